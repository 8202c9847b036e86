fn main() {
    std::process::exit(bprof::cli::main_with_args(std::env::args_os()));
}
