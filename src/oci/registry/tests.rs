//! Unit tests of the registry client (`super`).

use super::*;

#[test]
fn loopback_registries_use_plain_http_and_docker_hub_its_api_host() {
    let s = RegistrySettings::anonymous();
    let url = |h: &str| Registry::new(h, &s).unwrap().base.to_string();
    assert_eq!(url("127.0.0.1:5000"), "http://127.0.0.1:5000/");
    assert_eq!(url("[::1]:5000"), "http://[::1]:5000/");
    assert_eq!(url("localhost"), "http://localhost/");
    assert_eq!(url("ghcr.io"), "https://ghcr.io/");
    assert_eq!(
        url("127.evil.example:5000"),
        "https://127.evil.example:5000/"
    );
    assert_eq!(url("docker.io"), "https://registry-1.docker.io/");
    assert_eq!(
        Registry::new("[::1]:5000", &s)
            .unwrap()
            .url("a/b", "blobs/x"),
        "http://[::1]:5000/v2/a/b/blobs/x"
    );
}

#[test]
fn a_registry_holds_its_own_credentials_only() {
    let c = Credentials {
        username: "u".into(),
        password: "p".into(),
    };
    let s = RegistrySettings::anonymous().with_credentials("a.example:5000", c.clone());
    assert_eq!(
        Registry::new("a.example:5000", &s).unwrap().credentials,
        Some(c)
    );
    assert_eq!(Registry::new("a.example", &s).unwrap().credentials, None);
    assert_eq!(
        Registry::new("b.example:5000", &s).unwrap().credentials,
        None
    );
}

#[test]
fn origins_compare_scheme_host_and_port() {
    let u = |s: &str| Url::parse(s).unwrap();
    assert!(same_origin(
        &u("https://a.example/v2/x"),
        &u("https://a.example:443/")
    ));
    assert!(!same_origin(
        &u("https://a.example/"),
        &u("https://a.example:8443/")
    ));
    assert!(!same_origin(
        &u("http://a.example/"),
        &u("https://a.example/")
    ));
    assert!(!same_origin(
        &u("https://b.example/"),
        &u("https://a.example/")
    ));
}

#[test]
fn manifest_references_are_tags_or_digests() {
    assert!(manifest_reference("1.0").unwrap().is_none());
    assert!(manifest_reference(&format!("sha512:{}", "a".repeat(128)))
        .unwrap()
        .is_some());
    for bad in ["sha256:../../x", "../x", "a/b", ""] {
        assert!(manifest_reference(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn upload_locations_resolve_and_never_downgrade() {
    let r = Registry::new("reg.example", &RegistrySettings::anonymous()).unwrap();
    let url = r.upload_location("/v2/a/blobs/uploads/1?_state=s").unwrap();
    assert_eq!(url.host_str(), Some("reg.example"));
    assert_eq!(url.query(), Some("_state=s"));
    let url = r.upload_location("https://storage.example/up/1").unwrap();
    assert_eq!(url.host_str(), Some("storage.example"));
    let e = r
        .upload_location("http://storage.example/up/1")
        .unwrap_err();
    assert!(format!("{e}").contains("not over https"), "{e}");
}

#[test]
fn listed_loopback_registries_speak_https() {
    let s = RegistrySettings::anonymous().with_https_hosts(vec!["127.0.0.1:5001".into()]);
    let url = |h: &str| Registry::new(h, &s).unwrap().base.to_string();
    assert_eq!(url("127.0.0.1:5001"), "https://127.0.0.1:5001/");
    assert_eq!(url("127.0.0.1:5000"), "http://127.0.0.1:5000/");
    assert_eq!(url("reg.example"), "https://reg.example/");
}
