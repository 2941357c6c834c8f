//! Every variable this service reads is documented in the repository's `.env.example`.

#[test]
fn every_setting_is_documented_in_env_example() {
    homelab::testkit::assert_settings_documented(
        env!("CARGO_BIN_EXE_orchestrator"),
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.env.example"),
    );
}
