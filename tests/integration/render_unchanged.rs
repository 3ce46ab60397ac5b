//! A connector without `spec.config` renders byte for byte as before `config` existed: the expected
//! files were rendered by the operator before `config` existed (at c872d21, with the working-directory
//! change) from copies of `examples/`.

#[test]
fn manifests_without_config_render_as_before() {
    for name in ["okta", "okta-oneshot", "privx", "segment", "sentinel-one"] {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden");
        let input = std::fs::read_to_string(format!("{dir}/{name}.input.yaml")).unwrap();
        let expected = std::fs::read_to_string(format!("{dir}/{name}.rendered.yaml")).unwrap();
        let rendered = baton_operator::render::render(&input, "identity").unwrap();
        assert!(rendered == expected, "{name}: rendering changed:\n{rendered}");
    }
}
