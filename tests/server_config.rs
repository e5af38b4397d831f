//! The example server's configuration as an operator gives it: a TOML file, `TEND_*`
//! environment variables and flags, each over the one before, for every runtime setting.

#[path = "support/example.rs"]
mod support;

use std::process::Command;

use support::{Finished, Process};

/// Runs the server with `args` and `env` (and no other `TEND_*` variable) to its end.
fn run(args: &[&str], env: &[(&str, &str)]) -> Finished {
    let mut command = Command::new(support::example("server"));
    command
        .args(["--data", "/nonexistent/never-opened"])
        .args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("TEND_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    Process::spawn("the server", command).finish()
}

#[test]
fn every_setting_is_a_flag_and_an_environment_variable() {
    let help = run(&["--help"], &[]);
    assert!(help.status.success(), "{}", help.describe());
    for setting in tend::SETTINGS {
        let flag = format!("--{} <VALUE>", setting.flag());
        let env = format!("[env: {}=", setting.env());
        assert!(
            help.stdout.contains(&flag) && help.stdout.contains(&env),
            "{} missing from --help:\n{}",
            setting.key,
            help.stdout
        );
    }
}

#[test]
fn flags_go_over_variables_which_go_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tend.toml");
    std::fs::write(
        &file,
        "parallelism = 3\nstop_grace = \"5s\"\nretain_max = 10\ncrash_limit = 7\n",
    )
    .unwrap();
    let printed = run(
        &[
            "--config",
            file.to_str().unwrap(),
            "--parallelism",
            "9",
            "--retention",
            "30d",
            "--print-config",
        ],
        &[
            ("TEND_STOP_GRACE", "7s"),
            ("TEND_PARALLELISM", "5"),
            ("TEND_RESUME_ON_START", "false"),
        ],
    );
    assert!(printed.status.success(), "{}", printed.describe());
    let config = tend::Config::from_toml(&printed.stdout).expect("it prints a valid config");
    assert_eq!(
        config.parallelism, 9,
        "the flag over the variable and the file"
    );
    assert_eq!(
        config.stop_grace,
        std::time::Duration::from_secs(7),
        "the variable over the file"
    );
    assert!(!config.resume_on_start, "a variable over the default");
    assert_eq!(
        config.retain_max,
        Some(10),
        "the file's, given nowhere else"
    );
    assert_eq!(config.crash_limit, 7);
    assert_eq!(
        config.retention,
        Some(std::time::Duration::from_secs(30 * 86_400))
    );
    assert_eq!(
        config.max_items,
        tend::Config::default().max_items,
        "the default"
    );
}

#[test]
fn a_bad_value_stops_the_server_naming_the_setting() {
    for (args, env, says) in [
        (vec!["--parallelism", "many"], vec![], "parallelism"),
        (vec![], vec![("TEND_STOP_GRACE", "soon")], "soon"),
        (vec![], vec![("TEND_MAX_ITEMS", "0")], "max_items"),
    ] {
        let mut args = args;
        args.push("--print-config");
        let ended = run(&args, &env);
        assert!(!ended.status.success(), "{}", ended.describe());
        assert!(ended.stderr.contains(says), "{says}: {}", ended.describe());
        assert!(
            ended.stdout.is_empty(),
            "nothing printed: {}",
            ended.describe()
        );
    }
}

/// Issue 22, part 10: `--print-config` needs no data directory; a run does, and says so.
#[test]
fn print_config_needs_no_data_directory_and_a_run_says_it_needs_one() {
    let bare = |args: &[&str]| {
        let mut command = Command::new(support::example("server"));
        command.args(args).env_remove("TEND_STOP_GRACE");
        Process::spawn("the server", command).finish()
    };
    let printed = bare(&["--print-config", "--parallelism", "3"]);
    assert!(printed.status.success(), "{}", printed.describe());
    let config = tend::Config::from_toml(&printed.stdout).expect("it prints a valid config");
    assert_eq!(config.parallelism, 3);
    let refused = bare(&["--bind", "127.0.0.1:0"]);
    assert!(!refused.status.success(), "{}", refused.describe());
    assert!(refused.stderr.contains("--data"), "{}", refused.describe());
}
