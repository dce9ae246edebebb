//! A real browser for the browser tests: chromedriver and headless
//! Chromium through WebDriver, an in-page accessibility check, screenshots,
//! and helpers to fill, click and read. Included by `#[path]` where used.

use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

/// The in-page accessibility check: a list of problems, empty when none.
pub const A11Y: &str = r#"
const problems = [];
for (const el of document.querySelectorAll('input, select, textarea')) {
  if (el.type === 'hidden') continue;
  const byFor = el.id && document.querySelector('label[for="' + el.id + '"]');
  if (!byFor && !el.closest('label') && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
    problems.push('a field without a label: ' + (el.name || el.outerHTML.slice(0, 60)));
}
for (const b of document.querySelectorAll('button, a')) {
  if (!b.textContent.trim() && !b.getAttribute('aria-label')) problems.push('a control without a name');
}
if (!document.documentElement.lang) problems.push('no page language');
if (!document.title.trim()) problems.push('no page title');
for (const el of document.querySelectorAll('[tabindex]')) {
  const t = parseInt(el.getAttribute('tabindex'), 10);
  if (t > 0 || (t < 0 && el.matches('a, button, input, select, textarea'))) problems.push('tabindex ' + t + ' on ' + el.tagName);
}
for (const img of document.querySelectorAll('img')) if (!img.hasAttribute('alt')) problems.push('an image without alt text');
function parse(c) { const m = c.match(/rgba?\(([^)]+)\)/); if (!m) return null; const p = m[1].split(',').map(parseFloat); return { rgb: p.slice(0, 3), a: p.length > 3 ? p[3] : 1 }; }
function lum(rgb) { const [r, g, b] = rgb.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }); return 0.2126 * r + 0.7152 * g + 0.0722 * b; }
function background(el) { while (el) { const c = parse(getComputedStyle(el).backgroundColor); if (c && c.a > 0) return c.rgb; el = el.parentElement; } return [255, 255, 255]; }
for (const el of document.querySelectorAll('body *')) {
  if (!Array.from(el.childNodes).some(n => n.nodeType === 3 && n.textContent.trim())) continue;
  const style = getComputedStyle(el);
  if (style.visibility === 'hidden' || style.display === 'none') continue;
  const fg = parse(style.color); if (!fg) continue;
  const a = lum(fg.rgb), b = lum(background(el));
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  if (ratio < 4.5) problems.push('contrast ' + ratio.toFixed(2) + ' for "' + el.textContent.trim().slice(0, 30) + '"');
}
return problems;
"#;

/// chromedriver, running for the test's length.
pub struct Driver {
    process: tokio::process::Child,
    pub url: String,
}

pub async fn driver() -> Driver {
    let found = std::process::Command::new("chromedriver")
        .arg("--version")
        .output();
    assert!(
        found.is_ok(),
        "the browser test needs Chromium and chromedriver: run the README's test command \
         (scripts/test.sh installs the `chromium` and `chromium-driver` packages)"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let process = tokio::process::Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if reqwest::get(format!("{url}/status")).await.is_ok() {
            return Driver { process, url };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start");
}

pub async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,1000"],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a browser session")
}

/// A visited page: checked for accessibility and photographed.
pub struct Tour {
    shots: std::path::PathBuf,
    n: usize,
}

impl Tour {
    pub fn new(folder: &str) -> Self {
        let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join(folder);
        std::fs::create_dir_all(&shots).unwrap();
        Self { shots, n: 0 }
    }

    pub async fn check(&mut self, c: &Client, name: &str) {
        self.n += 1;
        let png = c.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{:02}-{name}.png", self.n)), png).unwrap();
        let problems = c.execute(A11Y, vec![]).await.unwrap();
        let problems: Vec<String> = serde_json::from_value(problems).unwrap();
        assert!(problems.is_empty(), "{name}: {problems:?}");
    }
}

pub async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

pub async fn fill(c: &Client, id: &str, value: &str) {
    let field = c.find(Locator::Id(id)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

/// Clicks what navigates to another page, and waits until that page has
/// loaded (a marker set on the old document is gone).
pub async fn click(c: &Client, css: &str) {
    c.execute("window.__before_click = true;", vec![])
        .await
        .unwrap();
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    for _ in 0..100 {
        let loaded = c
            .execute(
                "return window.__before_click === undefined && document.readyState === 'complete';",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        if loaded {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("clicking {css} did not load a page");
}
