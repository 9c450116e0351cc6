use clap::Parser;

fn main() -> std::process::ExitCode {
    match hawkeye::env_files::load_env_files() {
        Ok(loaded) => loaded.notices.iter().for_each(|n| eprintln!("notice: {n}")),
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    }
    let cli = hawkeye::cli::Cli::parse();
    hawkeye::cli::init_tracing(&cli);
    match hawkeye::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
