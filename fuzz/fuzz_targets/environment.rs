//! `.mlops/environments/<env>.yaml` text → the environment state or an error, never a panic;
//! what parses renders to text that parses back to the same state.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(state) = mlops::environment::parse(text) else {
        return;
    };
    let rendered = mlops::environment::render(&state).expect("a parsed state renders");
    let again = mlops::environment::parse(&rendered)
        .unwrap_or_else(|e| panic!("the rendered state does not parse back: {e:#}\n{rendered}"));
    assert_eq!(
        serde_json::to_value(&state).unwrap(),
        serde_json::to_value(&again).unwrap(),
        "render → parse changed the state:\n{rendered}"
    );
});
