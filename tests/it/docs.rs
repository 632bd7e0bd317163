//! docs/security.md maps each threat to the tests that show its defence; this keeps the
//! map honest: every `file::test` it names must exist.

#[test]
fn every_test_named_in_the_threat_model_exists() {
    let root = env!("CARGO_MANIFEST_DIR");
    let doc = std::fs::read_to_string(format!("{root}/docs/security.md")).unwrap();
    let mut checked = 0;
    for quoted in doc.split('`').skip(1).step_by(2) {
        let Some((file, name)) = quoted.split_once("::") else {
            continue;
        };
        if name.contains('*')
            || name.contains('…')
            || name.contains("::")
            || !file.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        {
            continue;
        }
        let path = format!("{root}/tests/it/{file}.rs");
        let source = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!("docs/security.md names {quoted}, but {path} does not exist")
        });
        assert!(
            source.contains(&format!("fn {name}(")),
            "docs/security.md names {quoted}, which does not exist"
        );
        checked += 1;
    }
    assert!(
        checked >= 30,
        "the threat model names the tests it relies on ({checked} found)"
    );
}
