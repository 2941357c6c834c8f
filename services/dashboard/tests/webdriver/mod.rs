//! The few W3C WebDriver calls the browser test needs, over plain HTTP to a loopback
//! chromedriver. Not fantoccini: its TLS options pull either aws-lc-rs, which next to
//! reqwest's ring leaves rustls without a default provider in every test binary of
//! the workspace, or OpenSSL's headers; this test needs no TLS at all.

use base64::Engine;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    http: reqwest::Client,
    session: String,
}

pub enum By<'a> {
    Css(&'a str),
    XPath(&'a str),
}

impl By<'_> {
    fn body(&self) -> Value {
        match self {
            By::Css(selector) => json!({"using": "css selector", "value": selector}),
            By::XPath(path) => json!({"using": "xpath", "value": path}),
        }
    }
}

impl Browser {
    /// A headless Chromium session at `driver` (chromedriver's address).
    pub async fn start(driver: &str, width: u32, height: u32) -> Self {
        let http = reqwest::Client::new();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", format!("--window-size={width},{height}")]}
        }}});
        let answer: Value = http
            .post(format!("{driver}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .unwrap();
        let id = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"));
        Self {
            http,
            session: format!("{driver}/session/{id}"),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        match answer["value"].get("error") {
            Some(error) => Err(format!("{error}: {}", answer["value"]["message"])),
            None => Ok(answer["value"].clone()),
        }
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await
            .unwrap();
    }

    pub async fn url(&self) -> String {
        let url = self.call(reqwest::Method::GET, "/url", None).await.unwrap();
        url.as_str().unwrap_or_default().to_string()
    }

    pub async fn find(&self, by: By<'_>) -> Result<String, String> {
        let found = self
            .call(reqwest::Method::POST, "/element", Some(by.body()))
            .await?;
        Ok(found[ELEMENT].as_str().unwrap_or_default().to_string())
    }

    /// Polls until the element exists, at most `timeout`.
    pub async fn wait_for(&self, by: By<'_>, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            match self.find(by_again(&by)).await {
                Ok(element) => return element,
                Err(error) if Instant::now() > deadline => {
                    panic!("not found in {timeout:?}: {error}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    pub async fn count(&self, by: By<'_>) -> usize {
        let found = self
            .call(reqwest::Method::POST, "/elements", Some(by.body()))
            .await
            .unwrap();
        found.as_array().map_or(0, Vec::len)
    }

    pub async fn type_into(&self, element: &str, text: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({"text": text})),
        )
        .await
        .unwrap();
    }

    pub async fn click(&self, element: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await
        .unwrap();
    }

    pub async fn text(&self, element: &str) -> String {
        let text = self
            .call(
                reqwest::Method::GET,
                &format!("/element/{element}/text"),
                None,
            )
            .await
            .unwrap_or_default();
        text.as_str().unwrap_or_default().to_string()
    }

    pub async fn resize(&self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await
        .unwrap();
    }

    /// The visible page as PNG bytes.
    pub async fn screenshot(&self) -> Vec<u8> {
        let encoded = self
            .call(reqwest::Method::GET, "/screenshot", None)
            .await
            .unwrap();
        base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap_or_default())
            .unwrap()
    }

    pub async fn close(self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}

fn by_again<'a>(by: &By<'a>) -> By<'a> {
    match by {
        By::Css(selector) => By::Css(selector),
        By::XPath(path) => By::XPath(path),
    }
}
