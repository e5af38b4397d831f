//! The runtime handle: build it, start it on a data directory (or in memory), and use it to
//! submit, watch, interrupt, resume and wait for executions. `shutdown` has its sequence.

mod shutdown;

pub(crate) use shutdown::MAX_DEADLINE as MAX_SHUTDOWN_DEADLINE;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::Stream;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef, RpcReplyPort};
use tend_actors::janitor::{HealthSettings, SweepReport, SweepSettings};
use tend_actors::monitor::{HealthReport, MonitorLimits};
use tend_actors::supervisor::Retention;
use tend_actors::supervisor::{Settings, Supervisor, SupervisorArgs, SupervisorMsg};
use tend_actors::{
    ActorNode, Answer, DryRun, Event, ExecutionId, ExecutionPage, ExecutionReport,
    ExecutionSummary, InterruptStrategy, Janitor, JanitorArgs, JanitorMsg, LifecycleBus,
    LifecycleEvent, LifecycleKind, ListQuery, MaintenanceReason, MaintenanceReport,
    MaintenanceRequest, Notice, Outcome, Plan, Registry, Resources, RuntimeError, SemaphoreReport,
    Semaphores, Store, StoreFailure, Submitted,
};
use tokio::sync::broadcast;

use crate::config::{Config, ConfigError};
use crate::error::Error;

enum Storage {
    Dir(PathBuf),
    Memory,
    /// A store the embedder opened (any backend).
    Opened(Store),
    /// A PostgreSQL database (connected at start).
    #[cfg(feature = "postgres")]
    Postgres {
        url: String,
        options: tend_actors::store::PostgresOptions,
    },
}

/// Configures and starts a [`Runtime`].
pub struct RuntimeBuilder {
    storage: Storage,
    registry: Registry,
    config: Config,
    resources: Resources,
    /// Lifecycle subscribers, subscribed before anything starts so they see startup.
    modules: Vec<Module>,
}

type Module = (String, Box<dyn FnOnce(&LifecycleBus) + Send>);

impl std::fmt::Debug for RuntimeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let storage = match &self.storage {
            Storage::Dir(dir) => dir.display().to_string(),
            Storage::Memory => ":memory:".to_owned(),
            Storage::Opened(store) => format!("{store:?}"),
            #[cfg(feature = "postgres")]
            Storage::Postgres { url, options } => format!(
                "{} (schema {})",
                tend_actors::store::redact(url),
                options.schema
            ),
        };
        f.debug_struct("RuntimeBuilder")
            .field("storage", &storage)
            .field("registry", &self.registry)
            .field("config", &self.config)
            .field(
                "modules",
                &self.modules.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl RuntimeBuilder {
    /// Keep executions in `dir/tend.redb`, created if needed. Starting again on the same
    /// directory finds every execution of earlier runs.
    pub fn data_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.storage = Storage::Dir(dir.as_ref().to_owned());
        self
    }

    /// Keep executions in memory only: nothing survives the process.
    pub fn in_memory(mut self) -> Self {
        self.storage = Storage::Memory;
        self
    }

    /// Keep executions in `store`, opened by the caller: any [`Backend`](tend_actors::store::Backend)
    /// wrapped in a [`Store`] (one written outside tend too, once it passes the behaviour
    /// suite, `tend_actors::store::suite`). The runtime closes it when it stops.
    pub fn store(mut self, store: Store) -> Self {
        self.storage = Storage::Opened(store);
        self
    }

    /// Keep executions in the PostgreSQL database at `url` (`postgres://user:password@host/db`),
    /// in the schema `tend`, created or migrated at start. One runtime per database and
    /// schema until several nodes are built: a second one is refused at start. Errors name
    /// the URL without its password. Feature `postgres`.
    #[cfg(feature = "postgres")]
    pub fn postgres(self, url: impl Into<String>) -> Self {
        self.postgres_with(url, tend_actors::store::PostgresOptions::default())
    }

    /// [`postgres`](Self::postgres) with options: another schema (so two applications can
    /// share one database), the pool's size. Feature `postgres`.
    #[cfg(feature = "postgres")]
    pub fn postgres_with(
        mut self,
        url: impl Into<String>,
        options: tend_actors::store::PostgresOptions,
    ) -> Self {
        self.storage = Storage::Postgres {
            url: url.into(),
            options,
        };
        self
    }

    /// The item types plans may use.
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = registry;
        self
    }

    /// Adds a shared value that items read with [`ItemCtx::resource`](crate::ItemCtx::resource)
    /// (a database pool, a client, a log). One value per type.
    pub fn resource<T: std::any::Any + Send + Sync>(mut self, value: T) -> Self {
        self.resources.insert(value);
        self
    }

    /// The configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Subscribes a module, named `name`, to the lifecycle events of `kinds`
    /// ([`LifecycleKind::ALL`] for every one): `handle` is called with each, one at a time on
    /// a task of its own, and what it returns is its answer. Subscribed before the runtime
    /// starts, it sees `NodeStartupCompleted`. See [`LifecycleBus`].
    pub fn module<F, Fut>(mut self, name: &str, kinds: &[LifecycleKind], handle: F) -> Self
    where
        F: Fn(Arc<LifecycleEvent>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Answer> + Send + 'static,
    {
        let (module, kinds) = (name.to_owned(), kinds.to_vec());
        self.modules.push((
            name.to_owned(),
            Box::new(move |bus: &LifecycleBus| bus.subscribe(&module, &kinds, handle)),
        ));
        self
    }

    /// Subscribes an actor as a module: each lifecycle event of `kinds` arrives in its
    /// mailbox as `M::from(notice)`, and it answers through the [`Notice`].
    pub fn module_actor<M>(
        mut self,
        name: &str,
        kinds: &[LifecycleKind],
        actor: ActorRef<M>,
    ) -> Self
    where
        M: ractor::Message + From<Notice>,
    {
        let (module, kinds) = (name.to_owned(), kinds.to_vec());
        self.modules.push((
            name.to_owned(),
            Box::new(move |bus: &LifecycleBus| bus.subscribe_actor(&module, &kinds, actor)),
        ));
        self
    }

    /// Opens the store, loads earlier executions (those left running by a crash are now
    /// interrupted and resumable) and starts the supervisor. Must run inside a tokio
    /// runtime.
    pub async fn start(self) -> Result<Runtime, Error> {
        let began = std::time::Instant::now();
        self.config.validate()?;
        let redb = self.config.redb_options();
        let not_redb = !matches!(self.storage, Storage::Memory | Storage::Dir(_));
        if not_redb && self.config.store_cache_bytes.is_some() {
            return Err(ConfigError::Invalid {
                field: "store_cache_bytes",
                reason: "sets the redb store's page cache, and this runtime's store is not \
                         redb (PostgreSQL, or a store opened by the caller)",
            }
            .into());
        }
        let store = match self.storage {
            Storage::Memory => Store::in_memory_with(redb)?,
            Storage::Dir(dir) => tokio::task::spawn_blocking(move || Store::open_with(&dir, redb))
                .await
                .map_err(|e| RuntimeError::Actor(format!("store open task failed: {e}")))?
                .map_err(RuntimeError::from)?,
            Storage::Opened(store) => store,
            #[cfg(feature = "postgres")]
            Storage::Postgres { url, options } => {
                tend_actors::store::PostgresStore::connect(&url, options)
                    .await
                    .map(Store::new)
                    .map_err(RuntimeError::from)?
            }
        };
        let (events, _) = broadcast::channel(self.config.event_capacity);
        let bus = Arc::new(LifecycleBus::new(events.clone()));
        let mut components = vec!["store".to_owned(), "lifecycle bus".to_owned()];
        for (name, subscribe) in self.modules {
            subscribe(&bus);
            components.push(format!("module {name}"));
        }
        let semaphores = Arc::new(Semaphores::new());
        let limiters = Arc::new(self.config.build_limiters()?);
        let registry = Arc::new(self.registry);
        let resources = Arc::new(self.resources);
        let settings = Settings {
            parallelism: self.config.parallelism,
            stop_grace: self.config.stop_grace,
            timeout_grace: self.config.timeout_grace,
            resume_on_start: self.config.resume_on_start,
            recovery_concurrency: self.config.recovery_concurrency,
            crash_limit: self.config.crash_limit,
            max_restarts: self.config.max_restarts,
            restart_window: self.config.restart_window,
            max_items: self.config.max_items,
            max_parallelism: self.config.max_parallelism,
        };
        let catalog = tend_actors::Catalog::new(store.clone());
        let args = SupervisorArgs {
            catalog: catalog.clone(),
            store: store.clone(),
            registry: registry.clone(),
            settings: settings.clone(),
            events,
            resources: resources.clone(),
            semaphores: semaphores.clone(),
            limiters,
        };
        let (supervisor, handle) = match Actor::spawn(None, Supervisor, args).await {
            Ok(spawned) => spawned,
            Err(e) => {
                let _ = store.close().await;
                return Err(RuntimeError::Actor(format!("supervisor did not start: {e}")).into());
            }
        };
        components.push("supervisor".to_owned());
        let health = Arc::new(std::sync::Mutex::new(None));
        let janitor_args = JanitorArgs {
            supervisor: supervisor.clone(),
            bus: bus.clone(),
            retention: Retention {
                older_than: self.config.retention,
                keep_at_most: self.config.retain_max,
                max_store_bytes: self.config.retain_bytes,
            },
            interval: self.config.maintenance_interval.filter(|i| !i.is_zero()),
            health: HealthSettings {
                store: store.clone(),
                limits: MonitorLimits {
                    disk_low_percent: self.config.disk_low_percent,
                    max_store_bytes: self.config.max_store_bytes,
                    max_memory_bytes: self.config.max_memory_bytes,
                    max_executions: self.config.max_executions,
                    warn_percent: self.config.warn_percent,
                },
                interval: Some(self.config.health_interval).filter(|i| !i.is_zero()),
                answer_within: self.config.lifecycle_timeout,
                last: health.clone(),
            },
            orphans: SweepSettings {
                protection: self.config.orphan_protection_time,
                interval: Some(self.config.orphan_sweep_interval).filter(|i| !i.is_zero()),
            },
        };
        let janitor = match Actor::spawn(None, Janitor, janitor_args).await {
            Ok((janitor, _)) => janitor,
            Err(e) => {
                supervisor.stop(None);
                let _ = handle.await;
                let _ = store.close().await;
                return Err(RuntimeError::Actor(format!("janitor did not start: {e}")).into());
            }
        };
        components.push("janitor".to_owned());
        let runtime = Runtime {
            janitor,
            health,
            supervisor,
            catalog,
            store,
            semaphores,
            registry,
            resources,
            settings,
            bus,
            shutdown: shutdown::Shutdown::new(&self.config, handle),
        };
        runtime.bus.publish(LifecycleEvent::NodeStartupCompleted {
            duration: began.elapsed(),
            components,
            at: Some(std::time::SystemTime::now()),
        });
        // The first health check, once startup is announced.
        let _ = runtime.janitor.cast(JanitorMsg::Check {
            check_type: tend_actors::HealthCheckType::Startup,
            reply: None,
        });
        Ok(runtime)
    }
}

/// A running tend runtime. Cheap to clone; every clone drives the same supervisor.
///
/// Dropping the handle does not stop anything: call [`shutdown`](Self::shutdown) so that
/// every execution is checkpointed and the store is flushed.
#[derive(Clone)]
pub struct Runtime {
    supervisor: ActorRef<SupervisorMsg>,
    /// Reads of executions that do not go through the supervisor's mailbox.
    catalog: tend_actors::Catalog,
    janitor: ActorRef<JanitorMsg>,
    /// The Janitor's last health report.
    health: Arc<std::sync::Mutex<Option<HealthReport>>>,
    store: Store,
    semaphores: Arc<Semaphores>,
    registry: Arc<Registry>,
    resources: Arc<Resources>,
    /// The ceilings a dry run checks as a submit does.
    settings: Settings,
    bus: Arc<LifecycleBus>,
    /// Whether a shutdown was asked for, and its report once done.
    shutdown: shutdown::Shutdown,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// A builder: in memory, empty registry, default config until told otherwise.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder {
            storage: Storage::Memory,
            registry: Registry::new(),
            config: Config::default(),
            resources: Resources::new(),
            modules: Vec::new(),
        }
    }

    async fn call<T: Send + 'static>(
        &self,
        msg: impl FnOnce(RpcReplyPort<T>) -> SupervisorMsg,
    ) -> Result<T, RuntimeError> {
        match self.supervisor.call(msg, None).await {
            Ok(CallResult::Success(value)) => Ok(value),
            _ => Err(RuntimeError::ShuttingDown),
        }
    }

    /// Reads that bypass the supervisor still end with it: once it has stopped (the
    /// runtime shut down), they are refused as its requests are.
    fn serving(&self) -> Result<(), RuntimeError> {
        match self.supervisor.get_status() {
            ractor::ActorStatus::Stopping | ractor::ActorStatus::Stopped => {
                Err(RuntimeError::ShuttingDown)
            }
            _ => Ok(()),
        }
    }

    async fn janitor_call<T: Send + 'static>(
        &self,
        msg: impl FnOnce(RpcReplyPort<T>) -> JanitorMsg,
    ) -> Result<T, RuntimeError> {
        match self.janitor.call(msg, None).await {
            Ok(CallResult::Success(value)) => Ok(value),
            _ => Err(RuntimeError::ShuttingDown),
        }
    }

    /// Validates `plan` and starts it. Returns once its record is durable. With an
    /// idempotency key ([`Plan::key`]) it is [`submit_if_absent`](Self::submit_if_absent),
    /// returning the id either way.
    pub async fn submit(&self, plan: Plan) -> Result<ExecutionId, RuntimeError> {
        self.submit_if_absent(plan).await.map(|s| s.id)
    }

    /// Validates `plan` and starts it, unless its idempotency key ([`Plan::key`]) already
    /// belongs to an execution: of the same plan, that execution is the answer
    /// (`created: false`) and nothing starts; of another plan, the submit is refused with
    /// [`RuntimeError::KeyConflict`]. A key stays with its execution, across restarts and
    /// crashes, until the execution is deleted or pruned; so an application that submits
    /// its work at startup with a fixed key submits it once. Returns once the record is
    /// durable.
    #[tracing::instrument(skip_all, fields(plan = %plan.name), err(level = "debug"))]
    pub async fn submit_if_absent(&self, plan: Plan) -> Result<Submitted, RuntimeError> {
        self.call(|reply| SupervisorMsg::Submit(plan, reply))
            .await?
    }

    /// Validates `plan` and runs only `check` on every item, block after block and each
    /// block in dependency order, and reports what a real run would change: nothing is
    /// applied or written and no execution is created. Items see
    /// [`ItemCtx::is_dry_run`](crate::ItemCtx::is_dry_run); a dependency that would apply
    /// has no output for its dependents yet (reading it is an input error, reported as
    /// that dependent's check failing). A plan that does not validate is the error.
    pub async fn dry_run(&self, plan: &Plan) -> Result<DryRun, RuntimeError> {
        self.settings.check_size(plan)?;
        Ok(tend_actors::dry_run::dry_run(plan, &self.registry, self.resources.clone()).await?)
    }

    /// The full report of one execution: its status and every item's.
    /// It is read from the execution's actor while it runs and from the store otherwise,
    /// never queued behind other requests to the runtime.
    pub async fn status(&self, id: ExecutionId) -> Result<ExecutionReport, RuntimeError> {
        self.serving()?;
        self.catalog
            .status(id, &self.supervisor)
            .await
            .map_err(closed_is_shutdown)
    }

    /// Every execution, oldest first. It reads every stored record: with many stored
    /// executions prefer [`list_page`](Self::list_page).
    pub async fn list(&self) -> Result<Vec<ExecutionSummary>, RuntimeError> {
        self.serving()?;
        self.catalog
            .list()
            .await
            .map_err(|e| closed_is_shutdown(e.into()))
    }

    /// How many executions are stored, and how many of those not finished stand how
    /// (running, interrupted, paused, corrupt...). It reads no stored execution.
    pub async fn counts(&self) -> Result<tend_actors::ExecutionCounts, RuntimeError> {
        self.serving()?;
        self.catalog
            .counts()
            .await
            .map_err(|e| closed_is_shutdown(e.into()))
    }

    /// One page of executions, newest first: at most `query.limit` (up to
    /// [`MAX_PAGE`](tend_actors::model::MAX_PAGE)) with `query.status`, created before
    /// `query.before`. Pass the page's `next` as the following query's `before`.
    /// A page filtered by status reads at most 20,000 stored records, so it may hold fewer
    /// than `limit` executions and still have a `next`.
    pub async fn list_page(&self, query: ListQuery) -> Result<ExecutionPage, RuntimeError> {
        self.serving()?;
        self.catalog
            .page(query)
            .await
            .map_err(|e| closed_is_shutdown(e.into()))
    }

    /// Interrupts one running execution. Returns once the execution has been told; use
    /// [`wait`](Self::wait) for its outcome.
    #[tracing::instrument(skip(self), fields(execution_id = %id), err(level = "debug"))]
    pub async fn interrupt(
        &self,
        id: ExecutionId,
        strategy: InterruptStrategy,
    ) -> Result<(), RuntimeError> {
        self.call(|reply| SupervisorMsg::Interrupt(id, strategy, reply))
            .await?
    }

    /// Pauses one running execution: nothing new starts, running items go on as
    /// `strategy` allows (`FinishCurrent`: to their end; `AtCancellationPoint`: to their
    /// next cancellation point), and once nothing runs the execution is `paused`. The
    /// status is durable (a crash while it quiesces leaves it paused too) and a start of
    /// the runtime does not resume it; [`resume`](Self::resume) does. Returns once the
    /// execution has been told; [`wait`](Self::wait) returns once it is paused. Pausing
    /// an execution that is not running (paused already, say) is
    /// [`RuntimeError::InvalidState`].
    #[tracing::instrument(skip(self), fields(execution_id = %id), err(level = "debug"))]
    pub async fn pause(
        &self,
        id: ExecutionId,
        strategy: InterruptStrategy,
    ) -> Result<(), RuntimeError> {
        self.call(|reply| SupervisorMsg::Pause(id, strategy, reply))
            .await?
    }

    /// Cancels one execution for good: nothing of it runs again, and it ends with the
    /// final status `cancelled`, which retention and [`delete`](Self::delete) treat as
    /// finished. A running one is interrupted with `strategy` (running items stop as it
    /// says, none start) and ends `cancelled` once nothing runs, or `completed`/`failed` if
    /// its work ends so first; an interrupted or paused one is cancelled at once. Returns
    /// once the cancel is durable (a crash meanwhile leaves it cancelled too);
    /// [`wait`](Self::wait) returns once it has ended. Cancelling a finished execution is
    /// [`RuntimeError::InvalidState`].
    #[tracing::instrument(skip(self), fields(execution_id = %id), err(level = "debug"))]
    pub async fn cancel(
        &self,
        id: ExecutionId,
        strategy: InterruptStrategy,
    ) -> Result<(), RuntimeError> {
        self.call(|reply| SupervisorMsg::Cancel(id, strategy, reply))
            .await?
    }

    /// Interrupts every running execution; returns their ids.
    pub async fn interrupt_all(
        &self,
        strategy: InterruptStrategy,
    ) -> Result<Vec<ExecutionId>, RuntimeError> {
        self.call(|reply| SupervisorMsg::InterruptAll(strategy, reply))
            .await
    }

    /// Resumes an interrupted or paused execution: done items are skipped, interrupted items continue
    /// from their intra-item checkpoint, dependents receive the stored outputs.
    #[tracing::instrument(skip(self), fields(execution_id = %id), err(level = "debug"))]
    pub async fn resume(&self, id: ExecutionId) -> Result<(), RuntimeError> {
        self.call(|reply| SupervisorMsg::Resume(id, reply)).await?
    }

    /// Runs a failed execution again: its failed and skipped items become pending (with a
    /// new retry budget; attempt numbers and past errors are kept), everything done stays
    /// done. Refused unless the execution is `failed`.
    #[tracing::instrument(skip(self), fields(execution_id = %id), err(level = "debug"))]
    pub async fn retry_failed(&self, id: ExecutionId) -> Result<(), RuntimeError> {
        self.call(|reply| SupervisorMsg::RetryFailed(id, reply))
            .await?
    }

    /// Deletes a finished (completed, failed, cancelled or corrupt) execution with all its records.
    /// Refused ([`RuntimeError::InvalidState`]) for one that is running, interrupted or
    /// paused: it could still run.
    #[tracing::instrument(skip(self), fields(execution_id = %id), err(level = "debug"))]
    pub async fn delete(&self, id: ExecutionId) -> Result<(), RuntimeError> {
        self.call(|reply| SupervisorMsg::Delete(id, reply)).await?
    }

    /// Runs maintenance now, as the Janitor does on its interval: `MaintenanceStarted`,
    /// `DataMaintenance {cleanup}` to the modules, the finished executions the retention
    /// (`retention`, `retain_max`) no longer keeps deleted, `MaintenanceCompleted`.
    /// `target_age` replaces `retention` for this run. Runs never overlap: this one waits
    /// for one under way. [`maintain_with`](Self::maintain_with) asks for a flush, or
    /// another urgency.
    pub async fn maintain(
        &self,
        target_age: Option<std::time::Duration>,
    ) -> Result<MaintenanceReport, RuntimeError> {
        self.maintain_with(MaintenanceRequest::cleanup(target_age))
            .await
    }

    /// Runs maintenance now as `request` says: `MaintenanceStarted`, then
    /// `DataMaintenance {operation, urgency, target_age}` to the modules while the runtime
    /// does its part (a flush commits everything the store holds; a cleanup deletes the
    /// finished executions the retention, or the request's target age, no longer keeps),
    /// then `MaintenanceCompleted`. With `Urgency::High` the modules get
    /// `lifecycle_timeout` to answer, and the report carries their answers. Runs never
    /// overlap: this one waits for one under way.
    pub async fn maintain_with(
        &self,
        request: MaintenanceRequest,
    ) -> Result<MaintenanceReport, RuntimeError> {
        self.janitor_call(|reply| JanitorMsg::Run {
            reason: MaintenanceReason::Manual,
            request,
            reply: Some(reply),
        })
        .await
    }

    /// Checks health now, as the Janitor does every `health_interval`: measures free
    /// space, the store's size and memory, publishes the warnings they call for and a
    /// `HealthCheck`, and returns the report with every module's answer.
    pub async fn health_check(&self) -> Result<HealthReport, RuntimeError> {
        self.janitor_call(|reply| JanitorMsg::Check {
            check_type: tend_actors::HealthCheckType::Manual,
            reply: Some(reply),
        })
        .await
    }

    /// Sweeps orphans now, as the Janitor does every `orphan_sweep_interval`: every
    /// artifact that no stored execution references and whose timestamp of interest is
    /// older than `protection` (default `orphan_protection_time`; zero is allowed) is
    /// deleted, in small batches beside running executions, then the leftover records of
    /// executions that no longer exist. Sweeps never overlap: this one waits for one under
    /// way.
    pub async fn sweep_orphans(
        &self,
        protection: Option<std::time::Duration>,
    ) -> Result<SweepReport, RuntimeError> {
        self.janitor_call(|reply| JanitorMsg::Sweep {
            protection,
            reply: Some(reply),
        })
        .await
    }

    /// The last health check's report (the first is made at startup).
    pub fn last_health(&self) -> Option<HealthReport> {
        match self.health.lock() {
            Ok(last) => last.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Makes the execution's actor fail the way a bug in it would, so tests can exercise
    /// restart intensity (`max_restarts`, `restart_window`). Not for normal use.
    #[doc(hidden)]
    pub async fn fail_execution_actor(
        &self,
        id: ExecutionId,
        reason: &str,
    ) -> Result<(), RuntimeError> {
        let reason = reason.to_owned();
        self.call(|reply| SupervisorMsg::FailExecution(id, reason, reply))
            .await?
    }

    /// Waits until the execution is no longer running and returns its outcome.
    pub async fn wait(&self, id: ExecutionId) -> Result<Outcome, RuntimeError> {
        self.call(|reply| SupervisorMsg::Wait(id, reply)).await?
    }

    /// The live actor tree: the supervisor, its running executions and their running attempts.
    pub async fn tree(&self) -> Result<ActorNode, RuntimeError> {
        self.call(SupervisorMsg::Tree).await
    }

    /// Every event published from now on, until the runtime has stopped (a shutdown's
    /// events included). Refused once it has.
    pub async fn subscribe(&self) -> Result<EventStream, RuntimeError> {
        // From the bus itself, not through the supervisor: a shutdown stops the
        // supervisor before its last events are published.
        let rx = self
            .bus
            .subscribe_events()
            .ok_or(RuntimeError::ShuttingDown)?;
        Ok(EventStream { rx })
    }

    /// Every semaphore in use (held or waited for), by tag: its size, the items holding it
    /// and those waiting, first in line first. Semaphores are in memory only: after a
    /// restart every permit is free, as no attempt survives a restart either.
    pub fn semaphores(&self) -> Vec<SemaphoreReport> {
        self.semaphores.report()
    }

    /// The lifecycle bus: subscribe modules after start, or publish an application's own
    /// events to them.
    pub fn lifecycle(&self) -> &LifecycleBus {
        &self.bus
    }

    /// The database file, or `None` in memory.
    pub fn store_path(&self) -> Option<&Path> {
        self.store.path()
    }

    /// The store's last failure (a commit that failed: a full disk, an I/O error), unless
    /// a commit has succeeded since. Executions stopped by it say so in their `reason`.
    pub fn store_failure(&self) -> Option<StoreFailure> {
        self.store.failure()
    }
}

/// Events from [`Runtime::subscribe`].
#[derive(Debug)]
pub struct EventStream {
    rx: broadcast::Receiver<Event>,
}

impl EventStream {
    /// The next event; `Event::Lagged` when this subscriber fell behind; `None` once the
    /// runtime has stopped.
    pub async fn next(&mut self) -> Option<Event> {
        match self.rx.recv().await {
            Ok(event) => Some(event),
            Err(broadcast::error::RecvError::Lagged(missed)) => Some(Event::Lagged { missed }),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// As a [`Stream`].
    pub fn into_stream(self) -> impl Stream<Item = Event> + Send + Unpin {
        Box::pin(futures::stream::unfold(self, |mut events| async move {
            events.next().await.map(|event| (event, events))
        }))
    }
}

/// A read after the store closed: the runtime has shut down.
fn closed_is_shutdown(e: RuntimeError) -> RuntimeError {
    match e {
        RuntimeError::Store(tend_actors::StoreError::Closed) => RuntimeError::ShuttingDown,
        e => e,
    }
}
