//! A real headless Chromium for the browser tests, driven over WebDriver by chromedriver
//! through `fantoccini`: one chromedriver process and one session, both ended on drop
//! even when a test fails.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` and `scripts/test.sh`
//! install them).
#![allow(dead_code, unreachable_pub)]

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use crate::helpers::PATIENCE;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The browser tests take turns: two Chromiums starting at once on two cores only slow
/// each other down.
pub static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Why the browser tests cannot run here, when `scripts/test.sh` could not install the
/// browser and said so (`TEND_BROWSER_SKIP`); without that, a missing browser fails them.
pub fn skipped() -> Option<String> {
    let missing = [CHROMIUM, CHROMEDRIVER]
        .iter()
        .any(|b| !std::path::Path::new(b).exists());
    let reason = std::env::var("TEND_BROWSER_SKIP").ok()?;
    missing.then(|| {
        println!("SKIPPED: {reason}");
        reason
    })
}

/// A chromedriver process and one browser session.
pub struct Browser {
    driver: Child,
    /// chromedriver's address, `127.0.0.1:PORT`.
    address: String,
    session: String,
    client: Option<Client>,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    /// Ends the session even when a test failed before `quit` (killing chromedriver alone
    /// would leave the browser running; the client's own end on drop needs the test's
    /// runtime, which a failing test is leaving), then the driver.
    fn drop(&mut self) {
        if self.client.take().is_some() {
            use std::io::{Read, Write};
            if let Ok(mut stream) = std::net::TcpStream::connect(&self.address) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let request = format!(
                    "DELETE /session/{} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    self.session, self.address
                );
                let _ = stream.write_all(request.as_bytes());
                let _ = stream.read_to_end(&mut Vec::new());
            }
        }
        if let Ok(pid) = i32::try_from(self.driver.id()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Starts chromedriver on a free port and waits until it is ready. The port is free when
/// picked but may be taken before chromedriver binds it; then chromedriver exits at once
/// and another port is tried.
async fn start_driver() -> (Child, String) {
    let mut last = String::from("not started");
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // In a process group of its own, with the browsers it starts: dropping the Browser
        // kills the whole group, whatever state the session is in.
        let mut driver = Command::new(CHROMEDRIVER)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let address = format!("127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Ok(Some(status)) = driver.try_wait() {
                last = format!("chromedriver on port {port} exited: {status}");
                break;
            }
            if tokio::net::TcpStream::connect(&address).await.is_ok() {
                return (driver, address);
            }
            if tokio::time::Instant::now() >= deadline {
                let _ = driver.kill();
                let _ = driver.wait();
                panic!("chromedriver on port {port} was not ready after {PATIENCE:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("chromedriver did not start: {last}")
}

impl Browser {
    /// A fresh browser (its own profile) with a 1400×900 window.
    pub async fn start() -> Browser {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(binary).exists(),
                "{binary} is missing: apt-get install chromium chromium-driver (scripts/test.sh does)"
            );
        }
        let profile = tempfile::tempdir().unwrap();
        let (driver, address) = start_driver().await;
        let args = json!([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,900",
            format!("--user-data-dir={}", profile.path().display()),
        ]);
        let mut capabilities = fantoccini::wd::Capabilities::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({"binary": CHROMIUM, "args": args}),
        );
        let mut browser = Browser {
            driver,
            address,
            session: String::new(),
            client: None,
            _profile: profile,
        };
        // chromedriver answers as soon as it listens; a session may still take a while.
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities);
        let url = format!("http://{}", browser.address);
        let client = tokio::time::timeout(PATIENCE, builder.connect(&url))
            .await
            .expect("a browser session within PATIENCE")
            .expect("a browser session");
        browser.session = client
            .session_id()
            .await
            .ok()
            .flatten()
            .expect("the session has an id");
        browser.client = Some(client);
        browser
    }

    /// The WebDriver client.
    pub fn client(&self) -> &Client {
        // Set in `start`, taken only by `quit` (which consumes the browser) and drop.
        self.client.as_ref().expect("the session is open")
    }

    pub async fn goto(&self, url: &str) {
        self.client().goto(url).await.unwrap();
    }

    /// The text of the element matching `css`, if there is one now.
    pub async fn text(&self, css: &str) -> Option<String> {
        let element = self.client().find(Locator::Css(css)).await.ok()?;
        element.text().await.ok()
    }

    /// Clicks the element matching `css`; false if it was not there (or was replaced, or
    /// could not be clicked).
    pub async fn click(&self, css: &str) -> bool {
        match self.client().find(Locator::Css(css)).await {
            Ok(element) => element.click().await.is_ok(),
            Err(_) => false,
        }
    }

    /// How many elements match `css` now.
    pub async fn count(&self, css: &str) -> usize {
        self.client()
            .find_all(Locator::Css(css))
            .await
            .map_or(0, |found| found.len())
    }

    /// Attribute `name` of the element matching `css`, if both are there now.
    #[allow(dead_code)]
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        let element = self.client().find(Locator::Css(css)).await.ok()?;
        element.attr(name).await.ok().flatten()
    }

    /// Picks option `value` of the select matching `css`; false if it could not.
    #[allow(dead_code)]
    pub async fn select(&self, css: &str, value: &str) -> bool {
        match self.client().find(Locator::Css(css)).await {
            Ok(element) => element.select_by_value(value).await.is_ok(),
            Err(_) => false,
        }
    }

    /// Replaces the text of the input matching `css` with `text`; false if it could not.
    #[allow(dead_code)]
    pub async fn type_into(&self, css: &str, text: &str) -> bool {
        match self.client().find(Locator::Css(css)).await {
            Ok(element) => {
                element.clear().await.is_ok()
                    && (text.is_empty() || element.send_keys(text).await.is_ok())
            }
            Err(_) => false,
        }
    }

    /// Resizes the window so that the page itself gets `width`×`height`.
    #[allow(dead_code)]
    pub async fn viewport(&self, width: i64, height: i64) {
        let inner = self
            .client()
            .execute("return [window.innerWidth, window.innerHeight];", vec![])
            .await
            .unwrap();
        let inner = |i: usize| inner[i].as_i64().unwrap();
        let (outer_w, outer_h) = self.client().get_window_size().await.unwrap();
        let grow = |outer: u64, want: i64, has: i64| (outer as i64 + want - has).max(1) as u32;
        self.client()
            .set_window_size(
                grow(outer_w, width, inner(0)),
                grow(outer_h, height, inner(1)),
            )
            .await
            .unwrap();
    }

    /// Saves a PNG of the window to `path`.
    #[allow(dead_code)]
    pub async fn screenshot(&self, path: &std::path::Path) {
        let png = self.client().screenshot().await.unwrap();
        std::fs::write(path, png).unwrap();
    }

    /// Ends the session and the driver.
    pub async fn quit(mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
    }
}
