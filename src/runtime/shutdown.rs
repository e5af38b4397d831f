//! Shutting down within a deadline, and the report of it.
//!
//! ```text
//! shutdown_with(reason, deadline)
//! 1. NodeShutdown published          subscribers answer (until lifecycle_timeout) while
//! 2. every execution interrupted     ... the executions stop, each checkpointing, aborted
//!    and stopped, top-down               past stop_grace, abandoned past the deadline
//! 3. DataMaintenance {flush, high, shutdown} published, answered; the store flushed
//! 4. the supervisor stopped, the store closed
//! 5. NodeShutdownCompleted published; the report returned (and kept for later callers)
//! ```
//!
//! The bridge's event streams follow the sequence: they carry `NodeShutdown`, each
//! execution's stop, the flush and `NodeShutdownCompleted`, then end. Only a shutdown
//! asked for before its sequence begins ([`Runtime::request_shutdown`], a signal through
//! `shutdown_signal`) ends them at once: the application drains its HTTP server first and
//! shuts the runtime down after, and its graceful shutdown must not wait for an open
//! dashboard.

use std::time::{Duration, Instant};

use ractor::rpc::CallResult;
use tend_actors::supervisor::SupervisorMsg;
use tend_actors::{
    Event, InterruptStrategy, LifecycleEvent, MaintenanceOperation, MaintenanceReason,
    RuntimeError, ShutdownReason, ShutdownReport, StopOrder, StopResult, Urgency,
};
use tokio::sync::watch;

use super::{Arc, Runtime};
use crate::config::Config;

/// The runtime's side of shutting down: whether one was asked for, and its report.
#[derive(Clone)]
pub(super) struct Shutdown {
    phase: Arc<watch::Sender<Phase>>,
    state: Arc<tokio::sync::Mutex<State>>,
    deadline: Duration,
    strategy: InterruptStrategy,
    stop_grace: Duration,
    lifecycle_timeout: Duration,
}

/// How far the runtime is on its way out, as its watchers (the bridge's event streams,
/// whoever waits for a request) see it. Each flag, once set, stays set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Phase {
    /// The first reason asked for; `None` while the runtime serves.
    pub(crate) reason: Option<ShutdownReason>,
    /// The shutdown sequence has begun.
    pub(crate) running: bool,
    /// Event streams end now: a shutdown was asked for before its sequence began (the
    /// application drains its server first, which must not wait for them).
    pub(crate) streams_end: bool,
    /// The sequence is over: everything it publishes has been published.
    pub(crate) finished: bool,
}

struct State {
    /// The supervisor's task, awaited once.
    supervisor: Option<tokio::task::JoinHandle<()>>,
    /// The shutdown under way: a task of its own, so that a caller that gives up (a
    /// dropped request, a timeout) does not cut the sequence short.
    running: Option<tokio::task::JoinHandle<ShutdownReport>>,
    report: Option<ShutdownReport>,
}

/// The longest deadline a shutdown takes; a longer one is cut to it.
pub(crate) const MAX_DEADLINE: Duration = Duration::from_secs(24 * 3600);

impl Shutdown {
    pub(super) fn new(config: &Config, supervisor: tokio::task::JoinHandle<()>) -> Self {
        Shutdown {
            phase: Arc::new(watch::Sender::new(Phase::default())),
            state: Arc::new(tokio::sync::Mutex::new(State {
                supervisor: Some(supervisor),
                running: None,
                report: None,
            })),
            deadline: config.shutdown_timeout,
            strategy: config.shutdown_strategy,
            stop_grace: config.stop_grace,
            lifecycle_timeout: config.lifecycle_timeout,
        }
    }
}

impl Runtime {
    /// Asks for a shutdown without performing it: whoever waits on
    /// [`shutdown_requested`](Self::shutdown_requested) or
    /// [`shutdown_signal`](Self::shutdown_signal) wakes. Unless the shutdown is already
    /// under way, the bridge's event streams end now: whoever asks this way drains an HTTP
    /// server before shutting the runtime down, and that server must not wait for them.
    /// The first reason asked for is kept. Returns whether this was the first request.
    pub fn request_shutdown(&self, reason: ShutdownReason) -> bool {
        let mut first = false;
        self.shutdown.phase.send_if_modified(|phase| {
            first = phase.reason.is_none();
            let streams_end = !phase.running && !phase.streams_end;
            phase.reason.get_or_insert(reason);
            phase.streams_end |= streams_end;
            first || streams_end
        });
        first
    }

    /// The shutdown sequence begins: a request, which event streams outlive (they follow
    /// the sequence to its end).
    fn begin_sequence(&self, reason: ShutdownReason) {
        self.shutdown.phase.send_if_modified(|phase| {
            let changed = phase.reason.is_none() || !phase.running;
            phase.reason.get_or_insert(reason);
            phase.running = true;
            changed
        });
    }

    /// How far the runtime is on its way out.
    #[cfg_attr(not(feature = "bridge"), allow(dead_code))]
    pub(crate) fn phase(&self) -> Phase {
        *self.shutdown.phase.borrow()
    }

    /// Resolves once event streams are to end at once (see
    /// [`request_shutdown`](Self::request_shutdown)).
    #[cfg_attr(not(feature = "bridge"), allow(dead_code))]
    pub(crate) fn streams_end(&self) -> impl std::future::Future<Output = ()> + Send + use<> {
        self.phase_reached(|phase| phase.streams_end)
    }

    /// Resolves once the shutdown sequence is over and everything it publishes has been
    /// published.
    #[cfg_attr(not(feature = "bridge"), allow(dead_code))]
    pub(crate) fn finished(&self) -> impl std::future::Future<Output = ()> + Send + use<> {
        self.phase_reached(|phase| phase.finished)
    }

    fn phase_reached(
        &self,
        reached: fn(&Phase) -> bool,
    ) -> impl std::future::Future<Output = ()> + Send + use<> {
        let mut phase = self.shutdown.phase.subscribe();
        async move {
            // The sender lives as long as any handle: an error means none is left, and
            // nothing will ever change.
            if phase.wait_for(reached).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// The configured deadline of [`shutdown`](Self::shutdown) (`shutdown_timeout`).
    pub fn shutdown_timeout(&self) -> Duration {
        self.shutdown.deadline
    }

    /// Whether a shutdown has been asked for (it may be under way or done).
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.phase.borrow().reason.is_some()
    }

    /// Resolves, with its reason, once a shutdown has been asked for (by any handle, a
    /// signal through [`shutdown_signal`](Self::shutdown_signal), or the bridge's
    /// `POST /shutdown`).
    pub fn shutdown_requested(
        &self,
    ) -> impl std::future::Future<Output = ShutdownReason> + Send + use<> {
        let mut phase = self.shutdown.phase.subscribe();
        async move {
            let reason = phase
                .wait_for(|p| p.reason.is_some())
                .await
                .map(|p| p.reason);
            match reason {
                Ok(reason) => reason.unwrap_or(ShutdownReason::Graceful),
                // The runtime is gone: nothing will ever be asked for.
                Err(_) => std::future::pending().await,
            }
        }
    }

    /// Resolves on SIGINT or SIGTERM (and Ctrl-C where there are no Unix signals), or once
    /// a shutdown is asked for otherwise, and asks for it: the bridge's event streams end
    /// unless the shutdown is under way already. Hand it to an HTTP server's graceful
    /// shutdown, then call [`shutdown_with`](Self::shutdown_with) with the reason it
    /// returns (to let event streams see the shutdown, shut the runtime down first and let
    /// the server drain after, as `examples/server.rs` does):
    ///
    /// ```no_run
    /// # async fn run(runtime: tend::Runtime, app: axum::Router) -> std::io::Result<()> {
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    /// let signal = runtime.clone();
    /// let (reason_tx, reason_rx) = tokio::sync::oneshot::channel();
    /// axum::serve(listener, app)
    ///     .with_graceful_shutdown(async move {
    ///         let _ = reason_tx.send(signal.shutdown_signal().await);
    ///     })
    ///     .await?;
    /// let reason = reason_rx.await.unwrap_or(tend::ShutdownReason::Signal);
    /// let report = runtime.shutdown_with(reason, std::time::Duration::from_secs(30)).await;
    /// eprintln!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn shutdown_signal(&self) -> ShutdownReason {
        let requested = self.shutdown_requested();
        let reason = tokio::select! {
            reason = requested => reason,
            () = terminated() => ShutdownReason::Signal,
        };
        self.request_shutdown(reason);
        reason
    }

    /// Shuts down with the configured deadline (`shutdown_timeout`) and reason `graceful`:
    /// see [`shutdown_with`](Self::shutdown_with). Calling it again does nothing. The error
    /// says what was not clean: an execution abandoned, or the store not flushed; every
    /// checkpoint acknowledged before stays durable either way.
    pub async fn shutdown(&self) -> Result<(), RuntimeError> {
        let report = self
            .shutdown_with(ShutdownReason::Graceful, self.shutdown.deadline)
            .await;
        if let Some(error) = &report.store_error {
            return Err(RuntimeError::Actor(format!(
                "the store was not flushed at shutdown: {error}"
            )));
        }
        match report
            .executions
            .iter()
            .find(|e| e.result == StopResult::Abandoned)
        {
            Some(e) => Err(RuntimeError::Actor(format!(
                "execution {} was abandoned at shutdown: {}",
                e.execution,
                e.error.as_deref().unwrap_or("no answer")
            ))),
            None => Ok(()),
        }
    }

    /// Shuts down within `deadline`: announces it (`NodeShutdown`), interrupts every
    /// execution with the configured `shutdown_strategy` and stops each once it has
    /// checkpointed (attempts still running after `stop_grace` are aborted), asks the
    /// modules to flush (`DataMaintenance {flush, high, shutdown}`), flushes and closes the
    /// store, and announces the end (`NodeShutdownCompleted`). Lifecycle subscribers get
    /// `lifecycle_timeout` to answer each event that needs an answer; one that does not is
    /// named in the report, never waited on longer.
    ///
    /// Past the deadline what is left is aborted and reported `abandoned`: its last durable
    /// records stand and the next start resumes it, as after a crash. A second call (from
    /// any handle) waits for the first and returns the same report.
    pub async fn shutdown_with(
        &self,
        reason: ShutdownReason,
        deadline: Duration,
    ) -> ShutdownReport {
        let mut state = self.shutdown.state.lock().await;
        if let Some(report) = &state.report {
            return report.clone();
        }
        let state = &mut *state;
        let running = state.running.get_or_insert_with(|| {
            // Said before the task runs: a request made from now on finds it under way.
            self.begin_sequence(reason);
            let runtime = self.clone();
            let supervisor = state.supervisor.take();
            let deadline = deadline.min(MAX_DEADLINE);
            tokio::spawn(async move { runtime.run_shutdown(reason, deadline, supervisor).await })
        });
        let report = match running.await {
            Ok(report) => report,
            Err(e) => {
                // Nothing more will be published: watchers need not wait for the rest.
                self.shutdown
                    .phase
                    .send_modify(|phase| phase.finished = true);
                ShutdownReport {
                    reason,
                    deadline,
                    duration: Duration::ZERO,
                    executions: Vec::new(),
                    modules: Vec::new(),
                    store_flushed: false,
                    store_error: Some(format!("the shutdown task failed: {e}")),
                }
            }
        };
        state.running = None;
        state.report = Some(report.clone());
        report
    }

    /// The sequence of [`shutdown_with`](Self::shutdown_with), on its own task.
    async fn run_shutdown(
        &self,
        reason: ShutdownReason,
        deadline: Duration,
        supervisor: Option<tokio::task::JoinHandle<()>>,
    ) -> ShutdownReport {
        // No maintenance from here on: a run under way is waited for (briefly), so its
        // events do not mix with the shutdown's.
        self.janitor.stop(None);
        let _ = self
            .janitor
            .get_cell()
            .wait(Some(self.shutdown.lifecycle_timeout.min(deadline)))
            .await;
        let began = Instant::now();
        // (`deadline` is at most MAX_DEADLINE: no overflow.)
        let until = began.checked_add(deadline).unwrap_or(began);
        let left = move || until.saturating_duration_since(Instant::now());
        let answer_within = self.shutdown.lifecycle_timeout.min(deadline);
        tracing::info!(?reason, deadline = %humantime::format_duration(deadline), "shutting down");

        let announced = self.bus.publish(LifecycleEvent::NodeShutdown {
            reason,
            timeout: deadline,
        });
        // A little of the deadline is kept for the flush and the end.
        let give_up_in = deadline.saturating_sub((deadline / 10).min(Duration::from_secs(1)));
        let order = StopOrder {
            strategy: self.shutdown.strategy,
            abort_in: self.shutdown.stop_grace.min(give_up_in.mul_f64(0.8)),
            give_up_in,
        };
        let stop = self.supervisor.call(
            |reply| SupervisorMsg::Shutdown(order, reply),
            // The supervisor answers within `give_up_in`; this only guards against one
            // that cannot answer at all.
            Some(deadline.saturating_add(Duration::from_secs(1))),
        );
        let (mut modules, stopped) = tokio::join!(announced.answers(answer_within), stop);
        let (executions, mut store_error) = match stopped {
            Ok(CallResult::Success(stopped)) => (
                stopped.executions,
                stopped.flush.err().map(|e| e.to_string()),
            ),
            _ => (
                Vec::new(),
                Some("the supervisor did not answer the shutdown".to_owned()),
            ),
        };
        // What became of each execution, for whoever watches the event stream, before the
        // flush is asked for.
        for stopped in &executions {
            self.bus.publish_event(Event::ExecutionStopped {
                execution: stopped.execution,
                result: stopped.result,
                status: stopped.status,
                error: stopped.error.clone(),
            });
        }

        let flush_within = answer_within.min(left());
        let flushing = self.bus.publish(LifecycleEvent::DataMaintenance {
            operation: MaintenanceOperation::Flush,
            urgency: Urgency::High,
            reason: MaintenanceReason::Shutdown,
            target_age: None,
            timeout: Some(flush_within),
        });
        modules.extend(flushing.answers(flush_within).await);

        if let Some(supervisor) = supervisor
            && tokio::time::timeout(left().max(Duration::from_millis(100)), supervisor)
                .await
                .is_err()
        {
            tracing::error!("the supervisor did not stop in time; killing it");
            self.supervisor.kill();
        }
        match tokio::time::timeout(left().max(Duration::from_secs(1)), self.store.close()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                store_error.get_or_insert(e.to_string());
            }
            Err(_) => {
                store_error.get_or_insert("the store did not close before the deadline".to_owned());
            }
        }
        let duration = began.elapsed();
        self.bus
            .publish(LifecycleEvent::NodeShutdownCompleted { duration });
        self.bus.close();
        self.shutdown
            .phase
            .send_modify(|phase| phase.finished = true);

        let report = ShutdownReport {
            reason,
            deadline,
            duration,
            executions,
            modules,
            store_flushed: store_error.is_none(),
            store_error,
        };
        tracing::info!(
            duration = %tend_actors::model::human_millis(duration),
            checkpointed = report.count(StopResult::Checkpointed),
            completed = report.count(StopResult::Completed),
            abandoned = report.count(StopResult::Abandoned),
            "shut down"
        );
        report
    }
}

/// SIGINT or SIGTERM; Ctrl-C where there are no Unix signals. A signal that cannot be
/// listened for is logged and waited for no longer.
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "cannot listen for SIGINT and SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    }
}
