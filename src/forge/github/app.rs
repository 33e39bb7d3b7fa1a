//! GitHub App authentication: a short-lived RS256 JWT signed with the App's private key buys an
//! installation token scoped to the one repository.

use anyhow::{bail, Context, Result};
use base64::Engine;
use reqwest::Method;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::RsaPrivateKey;
use serde_json::json;

use super::api::{expect_ok, Client};

/// `GITHUB_APP_PRIVATE_KEY` holds the PEM itself or the path of a file holding it.
fn private_key() -> Result<RsaPrivateKey> {
    let raw = std::env::var("GITHUB_APP_PRIVATE_KEY").context(
        "GITHUB_APP_ID is set but GITHUB_APP_PRIVATE_KEY is not: set it to the App's private key (PEM, or a path to it)",
    )?;
    let pem = if raw.contains("-----BEGIN") {
        raw
    } else {
        std::fs::read_to_string(&raw)
            .with_context(|| format!("GITHUB_APP_PRIVATE_KEY names {raw}, which cannot be read"))?
    };
    RsaPrivateKey::from_pkcs1_pem(&pem)
        .or_else(|_| RsaPrivateKey::from_pkcs8_pem(&pem))
        .map_err(|_| {
            anyhow::anyhow!(
                "GITHUB_APP_PRIVATE_KEY is not an RSA private key in PEM (the .pem file GitHub gives for an App)"
            )
        })
}

/// The App's JWT (valid 9 minutes, issued a minute in the past against clock drift).
pub fn jwt(app_id: &str, key: RsaPrivateKey) -> Result<String> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = chrono::Utc::now().timestamp();
    let iss: Value = app_id
        .parse::<u64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::from(app_id));
    let header = b64.encode(json!({"alg": "RS256", "typ": "JWT"}).to_string());
    let claims = b64.encode(json!({"iat": now - 60, "exp": now + 540, "iss": iss}).to_string());
    let input = format!("{header}.{claims}");
    let signature = SigningKey::<Sha256>::new(key).sign(input.as_bytes());
    Ok(format!("{input}.{}", b64.encode(signature.to_bytes())))
}

use serde_json::Value;

/// An installation token for the client's repository.
pub async fn installation_token(client: &Client, app_id: &str) -> Result<String> {
    let jwt = jwt(app_id, private_key()?)?;
    let installation = match std::env::var("GITHUB_APP_INSTALLATION_ID")
        .ok()
        .filter(|v| !v.is_empty())
    {
        Some(id) => id,
        None => {
            let path = client.repo_path("/installation");
            let r = client.send_as(Method::GET, &path, None, &jwt).await?;
            expect_ok(&r, "GET", &path)?;
            match &r.body["id"] {
                Value::Number(n) => n.to_string(),
                _ => bail!("GitHub's answer to GET {path} has no installation id"),
            }
        }
    };
    let path = format!("/app/installations/{installation}/access_tokens");
    let name = client.repo.split('/').nth(1).unwrap_or_default();
    let body = json!({"repositories": [name]});
    let r = client
        .send_as(Method::POST, &path, Some(&body), &jwt)
        .await?;
    expect_ok(&r, "POST", &path)?;
    match r.body["token"].as_str() {
        Some(t) if !t.is_empty() => Ok(t.to_string()),
        _ => bail!("GitHub's answer to POST {path} has no token"),
    }
}

/// The App's bot account, `<slug>[bot]` (from `GET /app`, which only the App's JWT may read):
/// the author of everything its installation tokens write.
pub async fn bot_login(client: &Client, app_id: &str) -> Result<String> {
    let jwt = jwt(app_id, private_key()?)?;
    let r = client.send_as(Method::GET, "/app", None, &jwt).await?;
    expect_ok(&r, "GET", "/app")?;
    match r.body["slug"].as_str() {
        Some(slug) if !slug.is_empty() => Ok(format!("{slug}[bot]")),
        _ => bail!("GitHub's answer to GET /app has no slug"),
    }
}
