//! The crash harness: the example server as a real child process, driven over HTTP with
//! plans of `sleep` and `sum` items, killed with SIGKILL at random instants (mid-run,
//! during a submit storm, during a graceful shutdown, during startup), restarted on the
//! same directory, again and again. Then, from the applied log and the final states:
//! every execution whose submit got a 201 exists and completes by itself (no manual
//! resume: a crash or a shutdown stopped it while it ran), no item starts before a `done`
//! of each dependency, no item is done more than once per kill plus once, `sum` outputs
//! are exact, and attempts count every start.
//!
//! `CRASH_TRIALS=N` sets the number of kills (default 20); `CRASH_SEED=S` replays a run
//! (the seed is printed).

#[path = "support/example.rs"]
mod support;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{PATIENCE, Process};

/// SplitMix64: seeded, so a run replays from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A plan: `leaves` sleep items with numeric outputs, sums of pairs of them, and a total.
/// Returns it and the total's expected output.
fn random_plan(rng: &mut Rng, n: usize) -> (Value, i64) {
    let leaves = 2 + rng.below(5) as usize;
    let mut items = Vec::new();
    let mut outputs = Vec::new();
    for i in 0..leaves {
        let output = rng.below(100) as i64;
        outputs.push(output);
        items.push(
            json!({"id": format!("leaf{i}"), "kind": "sleep", "params": {
                "ms": rng.below(40), "steps": 1 + rng.below(3), "output": output
            }}),
        );
    }
    let mut total = 0;
    let mut sums = Vec::new();
    for pair in 0..leaves / 2 {
        let (a, b) = (2 * pair, 2 * pair + 1);
        let add = rng.below(10) as i64;
        total += outputs[a] + outputs[b] + add;
        sums.push(format!("sum{pair}"));
        items.push(
            json!({"id": format!("sum{pair}"), "kind": "sum", "params": {"add": add},
            "after": [format!("leaf{a}"), format!("leaf{b}")]}),
        );
    }
    items.push(json!({"id": "total", "kind": "sum", "after": sums}));
    (
        json!({"name": format!("crash-{n}"), "blocks": [{"name": "b", "items": items}]}),
        total,
    )
}

struct Server {
    process: Process,
    base: Option<String>,
}

fn spawn(data: &Path, log: &Path, config: &Path) -> Server {
    let mut command = Command::new(support::example("server"));
    command
        .args(support::backend::server_store_args(data))
        .args(["--bind", "127.0.0.1:0"])
        .args(["--applied-log", log.to_str().unwrap()])
        .args(["--config", config.to_str().unwrap()])
        .env_remove("TEND_BRIDGE_TOKEN");
    Server {
        process: Process::spawn("the server", command),
        base: None,
    }
}

impl Server {
    fn wait_listening(&mut self) -> String {
        let base = self.process.wait_for_line("the server listens", |l| {
            l.strip_prefix("listening on ").map(str::to_owned)
        });
        self.base = Some(base.clone());
        base
    }
}

async fn get(client: &reqwest::Client, url: &str) -> Result<Value, String> {
    let response = client.get(url).send().await.map_err(|e| e.to_string())?;
    let text = response.text().await.map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))
}

/// Every execution the server lists, page by page (a page holds at most 1,000: a long run
/// makes more executions than one page).
async fn every_execution(client: &reqwest::Client, base: &str) -> Result<Vec<Value>, String> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1_000 {
        let url = match &cursor {
            Some(cursor) => format!("{base}/executions?limit=1000&cursor={cursor}"),
            None => format!("{base}/executions?limit=1000"),
        };
        let page = get(client, &url).await?;
        let executions = page["executions"]
            .as_array()
            .ok_or_else(|| format!("not a page: {page}"))?;
        all.extend(executions.iter().cloned());
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(all),
        }
    }
    Err("the listing did not end in 1,000 pages".to_owned())
}

#[tokio::test]
async fn random_sigkills_lose_nothing_acknowledged_and_every_execution_completes() {
    let trials: usize = std::env::var("CRASH_TRIALS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("crash harness: {trials} kills, seed {seed} (replay: CRASH_SEED={seed})");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let (data, log, config) = (
        dir.path().join("data"),
        dir.path().join("applied.log"),
        dir.path().join("tend.toml"),
    );
    // A random kill can land on the same item again and again: the harness checks the
    // accounting, so the crash limit is off.
    std::fs::write(&config, "crash_limit = 0\n").unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    // Acknowledged ids, and every submitted plan's expected total by its name.
    let mut accepted: Vec<String> = Vec::new();
    let mut totals: HashMap<String, i64> = HashMap::new();
    let mut submitted = 0usize;

    for _ in 0..trials {
        let mut server = spawn(&data, &log, &config);
        let moment = rng.below(4);
        if moment == 0 {
            // During startup: before it even listens, at a random instant.
            std::thread::sleep(Duration::from_millis(rng.below(60)));
        } else {
            let base = server.wait_listening();
            // A storm of submits, some still in flight when the kill comes.
            let storm = 1 + rng.below(6) as usize;
            let mut posts = Vec::new();
            for _ in 0..storm {
                let (plan, total) = random_plan(&mut rng, submitted);
                totals.insert(format!("crash-{submitted}"), total);
                submitted += 1;
                let (client, url) = (client.clone(), format!("{base}/executions"));
                posts.push(tokio::spawn(async move {
                    let response = client.post(url).json(&plan).send().await.ok()?;
                    if response.status() != 201 {
                        return None;
                    }
                    let body: Value = response.json().await.ok()?;
                    body["id"].as_str().map(str::to_owned)
                }));
            }
            tokio::time::sleep(Duration::from_millis(rng.below(150))).await;
            if moment == 3 {
                // During a graceful shutdown.
                server.process.signal("-TERM");
                tokio::time::sleep(Duration::from_millis(rng.below(30))).await;
            }
            if server.process.try_status().is_none() {
                server.process.kill();
            }
            for post in posts {
                if let Ok(Some(id)) = post.await {
                    accepted.push(id);
                }
            }
        }
        if server.process.try_status().is_none() {
            server.process.kill();
        }
        let _ = server.process.finish();
    }

    // A last start: everything acknowledged must complete without anyone resuming it.
    let mut server = spawn(&data, &log, &config);
    let base = server.wait_listening();
    let deadline = Instant::now() + PATIENCE * 2;
    let mut last: String;
    let finals = loop {
        let list = every_execution(&client, &base).await;
        match &list {
            Ok(executions) => {
                let by_id: HashMap<String, String> = executions
                    .iter()
                    .map(|e| {
                        (
                            e["id"].as_str().unwrap_or_default().to_owned(),
                            e["status"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect();
                for id in &accepted {
                    assert!(
                        by_id.contains_key(id),
                        "acknowledged execution {id} is gone (seed {seed})"
                    );
                }
                if by_id.values().all(|s| s == "completed") {
                    break by_id;
                }

                last = format!("{by_id:?}");
            }
            Err(e) => last = e.clone(),
        }
        assert!(
            Instant::now() < deadline,
            "not every execution completed (seed {seed}); last: {last}\n{}",
            server.process.describe()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // The applied log, per execution.
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let mut done_at: HashMap<(String, String), Vec<usize>> = HashMap::new();
    let mut starts: HashMap<(String, String), usize> = HashMap::new();
    let lines: Vec<(String, String, String)> = text
        .lines()
        .map(|l| {
            let mut parts = l.split(' ').map(str::to_owned);
            let mut next = || parts.next().unwrap_or_default();
            (next(), next(), next())
        })
        .collect();
    for (n, (event, execution, item)) in lines.iter().enumerate() {
        let key = (execution.clone(), item.clone());
        match event.as_str() {
            "start" => *starts.entry(key).or_default() += 1,
            "done" => done_at.entry(key).or_default().push(n),
            other => panic!("unexpected log line {other}"),
        }
    }
    for id in finals.keys() {
        let view = get(&client, &format!("{base}/executions/{id}"))
            .await
            .unwrap();
        for item in view["blocks"][0]["items"].as_array().unwrap() {
            let name = item["id"].as_str().unwrap().to_owned();
            let key = (id.clone(), name.clone());
            let dones = done_at.get(&key).map_or(0, Vec::len);
            assert!(
                (1..=trials + 1).contains(&dones),
                "{id}/{name} done {dones} times in {trials} kills (seed {seed})"
            );
            // Attempts count every start; one more at most per kill (a kill between the
            // durable start record and the attempt's first log line).
            let started = starts.get(&key).copied().unwrap_or(0);
            let attempts = item["attempts"].as_u64().unwrap() as usize;
            assert!(
                started <= attempts && attempts <= started + trials,
                "{id}/{name}: {attempts} attempts, {started} starts (seed {seed})"
            );
        }
        // No item starts before a done of each of its dependencies.
        let view_items = view["blocks"][0]["items"].as_array().unwrap().clone();
        for item in &view_items {
            let name = item["id"].as_str().unwrap();
            let deps: Vec<String> = if name == "total" {
                view_items
                    .iter()
                    .filter_map(|i| i["id"].as_str())
                    .filter(|i| i.starts_with("sum"))
                    .map(str::to_owned)
                    .collect()
            } else if let Some(pair) = name.strip_prefix("sum") {
                let pair: usize = pair.parse().unwrap();
                vec![format!("leaf{}", 2 * pair), format!("leaf{}", 2 * pair + 1)]
            } else {
                Vec::new()
            };
            for (n, (event, execution, logged)) in lines.iter().enumerate() {
                if event == "start" && execution == id && logged == name {
                    for dep in &deps {
                        let first_done = done_at
                            .get(&(id.clone(), dep.clone()))
                            .and_then(|d| d.first().copied());
                        assert!(
                            first_done.is_some_and(|d| d < n),
                            "{id}/{name} started (line {n}) before {dep} was done (seed {seed})"
                        );
                    }
                }
            }
        }
        // Every execution that exists (acknowledged or not) adds up exactly.
        let name = view["name"].as_str().unwrap_or_default();
        let total = totals.get(name).copied();
        let output = view_items
            .iter()
            .find(|i| i["id"] == "total")
            .map(|i| i["output"].clone());
        assert_eq!(output, total.map(|t| json!(t)), "{id} {name} (seed {seed})");
    }
    eprintln!(
        "crash harness: {trials} kills, {submitted} submits, {} acknowledged, {} executions completed",
        accepted.len(),
        finals.len()
    );
    server.process.signal("-TERM");
    let finished = server.process.finish();
    assert_eq!(finished.status.code(), Some(0), "{}", finished.describe());
}
