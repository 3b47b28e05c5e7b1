//! `NativeConnection`: a connection checked out of the pool for a WATCH session. Its commands run
//! on worker threads one at a time; `release()` returns it (the core UNWATCHes it if needed, which
//! is I/O, so it runs on a worker too). A connection dropped by the garbage collector is returned
//! from a worker as well, never on the main thread.
//!
//! Every method is a panic boundary; the reply timeout of a blocking command is the core's, as in
//! `NativePool.blocking`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use parking_lot::Mutex;
use redpool::{PooledConnection, workers};

use crate::convert::{self, Commands, JsArgs, Replies, Reply};
use crate::errors::{self, OrThrow};
use crate::pool::blocking_timeout;
use crate::task;

type Slot = Arc<Mutex<Option<PooledConnection>>>;

/// A checked-out connection.
#[napi]
pub struct NativeConnection {
    conn: Slot,
    socket_timeout: Duration,
}

fn released() -> redpool::Error {
    redpool::Error::released()
}

/// Runs `f` on the checked-out connection, on a worker thread.
fn with_conn<'env, T, F>(env: &'env Env, slot: &Slot, f: F) -> Result<Object<'env>>
where
    T: ToNapiValue + Send + 'static,
    F: FnOnce(&mut PooledConnection) -> redpool::Result<T> + Send + 'static,
{
    let slot = slot.clone();
    task::promise(env, move || {
        let mut guard = slot.lock();
        let conn = guard.as_mut().ok_or_else(released)?;
        Ok(f(conn)?)
    })
}

impl NativeConnection {
    pub fn new(conn: PooledConnection, socket_timeout: Duration) -> Self {
        NativeConnection {
            conn: Arc::new(Mutex::new(Some(conn))),
            socket_timeout,
        }
    }
}

#[napi]
impl NativeConnection {
    /// Sends `commands` as one pipeline on this connection.
    #[napi(ts_return_type = "Promise<unknown[]>", catch_unwind)]
    pub fn pipeline<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "Array<JsArgs>")] commands: Commands,
        buffers: Vec<bool>,
    ) -> Result<Object<'env>> {
        errors::boundary(env, || {
            let cmds = commands.into_cmds().or_throw(env)?;
            with_conn(env, &self.conn, move |conn| {
                Ok(Replies {
                    values: conn.pipeline(&cmds)?,
                    buffers,
                })
            })
        })
    }

    /// Runs `commands` in MULTI/EXEC on this connection; `null` if a WATCHed key changed.
    #[napi(ts_return_type = "Promise<unknown[] | null>", catch_unwind)]
    pub fn transaction<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "Array<JsArgs>")] commands: Commands,
        buffers: Vec<bool>,
    ) -> Result<Object<'env>> {
        errors::boundary(env, || {
            let cmds = commands.into_cmds().or_throw(env)?;
            with_conn(env, &self.conn, move |conn| {
                let outcome = conn.transaction(&cmds)?;
                Ok(outcome.map(|values| Replies { values, buffers }))
            })
        })
    }

    /// Runs one blocking command on this connection (see `NativePool.blocking`).
    #[napi(ts_return_type = "Promise<unknown>", catch_unwind)]
    pub fn blocking<'env>(
        &self,
        env: &'env Env,
        command: JsArgs,
        buffers: bool,
    ) -> Result<Object<'env>> {
        errors::boundary(env, || {
            let cmd = convert::command(&command).or_throw(env)?;
            let timeout = blocking_timeout(&cmd, self.socket_timeout).or_throw(env)?;
            with_conn(env, &self.conn, move |conn| {
                Ok(Reply {
                    value: conn.execute_with_timeout(&cmd, timeout)?,
                    buffers,
                })
            })
        })
    }

    /// Returns the connection to the pool (after any command still running on it). Idempotent.
    #[napi(ts_return_type = "Promise<void>", catch_unwind)]
    pub fn release<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        errors::boundary(env, || {
            let slot = self.conn.clone();
            task::promise(env, move || {
                drop(slot.lock().take());
                Ok(())
            })
        })
    }
}

impl Drop for NativeConnection {
    /// Runs in the garbage collector's finalizer, on the main thread: a panic here would abort
    /// Node, so it is caught (and the connection is then left to the pool's leak handling).
    fn drop(&mut self) {
        let slot = self.conn.clone();
        let _ = catch_unwind(AssertUnwindSafe(|| {
            workers::spawn(move || drop(slot.lock().take()))
        }));
    }
}
