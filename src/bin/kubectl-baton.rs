//! `kubectl baton`: kubectl finds this binary on PATH as a plugin. The logic is in the library.

fn main() -> std::process::ExitCode {
    baton_operator::plugin::main()
}
