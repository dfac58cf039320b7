//! The built-in defaults: the lists that make the default policy keep its promise.
//!
//! Each list here is what a user gets with no configuration. Every one of them can be replaced
//! or edited per list in `config.toml` (see docs/policy.md), unless requirements add to it.
//! Paths starting with `~/` are relative to the user's home directory; protected entries are
//! relative to each writable root.

/// Secrets under the home directory that commands may not read.
pub const DENY_READ: &[&str] = &[
    "~/.ssh",
    "~/.aws",
    "~/.azure",
    "~/.gnupg",
    "~/.config/gh",
    "~/.config/hub",
    "~/.config/gcloud",
    "~/.config/op",
    "~/.netrc",
    "~/.git-credentials",
    "~/.docker/config.json",
    // Per-user container daemon sockets (Docker Desktop, colima, lima, Rancher Desktop): a
    // connection to one is root on the host's VM (USERS.md 9); hiding the directory is the only
    // defence before Landlock mediates unix-socket connects (ABI 9).
    "~/.docker/run",
    "~/.colima",
    "~/.lima",
    "~/.rd",
    "~/.kube",
    "~/.npmrc",
    "~/.pypirc",
    "~/.cargo/credentials",
    "~/.cargo/credentials.toml",
    "~/.vault-token",
    "~/.terraform.d/credentials.tfrc.json",
    "~/.password-store",
    "~/.local/share/keyrings",
    "~/.mozilla",
    "~/.config/google-chrome",
    "~/.config/chromium",
    "~/.bash_history",
    "~/.zsh_history",
    "~/.python_history",
    "~/.node_repl_history",
    "~/.psql_history",
    "~/.mysql_history",
    "~/.codex/auth.json",
    "~/.claude/.credentials.json",
];

/// macOS secrets beyond [`DENY_READ`] (see [`crate::Locations::platform_deny_read`]): shell
/// history as Terminal keeps it, the keychains, and the browsers' profiles (cookies, saved
/// logins), which live under `~/Library` there.
pub const DENY_READ_MACOS: &[&str] = &[
    "~/.zsh_sessions",
    "~/Library/Keychains",
    "~/Library/Cookies",
    "~/Library/Safari",
    "~/Library/Application Support/Firefox",
    "~/Library/Application Support/Google/Chrome",
    "~/Library/Application Support/Chromium",
    "~/Library/Application Support/BraveSoftware",
    "~/Library/Application Support/Microsoft Edge",
    "~/Library/Application Support/1Password",
];

/// Paths inside each writable root that stay read-only: things that run code later on the
/// host (git hooks and config; husky's hooks, which git runs through `core.hooksPath`; dev
/// container definitions, whose `initializeCommand` runs on the host when the folder is
/// opened in a container) and the configuration of agents, editors and stockade itself.
pub const PROTECTED: &[&str] =
    &[".git/hooks", ".git/config", ".stockade", ".codex", ".claude", ".vscode", ".idea", ".devcontainer", ".husky"];

/// Files that would run code on the host later, never writable even inside a writable root.
pub const DENY_WRITE: &[&str] = &[
    "~/.bashrc",
    "~/.bash_profile",
    "~/.bash_login",
    "~/.bash_logout",
    "~/.profile",
    "~/.zshrc",
    "~/.zshenv",
    "~/.zprofile",
    "~/.zlogin",
    "~/.config/fish",
    "~/.gitconfig",
    "~/.config/git",
    "~/.config/autostart",
    "~/.config/systemd",
    "~/.local/bin",
];

/// The entries of [`DENY_WRITE`] that name directories. A backend that keeps missing paths
/// from being created with placeholders (Linux) may make an empty directory for these: it
/// changes nothing for the programs that read them, where an empty `.bashrc` would.
pub const DENY_WRITE_DIRS: &[&str] =
    &["~/.config/fish", "~/.config/git", "~/.config/autostart", "~/.config/systemd", "~/.local/bin"];

/// Host environment variables that pass into the command (names; `*` matches any run).
pub const ENV_ALLOW: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TERM",
    "COLORTERM",
    "NO_COLOR",
    "CLICOLOR",
    "CLICOLOR_FORCE",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "EDITOR",
    "VISUAL",
    "PAGER",
    "CARGO_HOME",
    "RUSTUP_HOME",
    "RUSTUP_TOOLCHAIN",
    "RUST_BACKTRACE",
    "RUST_LOG",
    "GOPATH",
    "GOROOT",
    "JAVA_HOME",
    "VIRTUAL_ENV",
    "PYENV_ROOT",
    "NVM_DIR",
    "CC",
    "CXX",
    "CFLAGS",
    "CXXFLAGS",
    "LDFLAGS",
    "PKG_CONFIG_PATH",
    "MAKEFLAGS",
    "XDG_CONFIG_HOME",
    "XDG_CACHE_HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "CI",
];

/// Variables that never pass, even when an allow pattern matches (compared ignoring case):
/// credentials, and addresses of host services that would let the command act outside.
pub const ENV_DENY: &[&str] = &[
    "*_TOKEN",
    "*_TOKEN_*",
    "*_KEY",
    "*_KEY_*",
    "*_SECRET",
    "*_SECRET_*",
    "*_SECRETS",
    "*_PASSWORD",
    "*_PASSWD",
    "*_CREDENTIALS",
    "*_AUTH",
    "*_AUTHTOKEN",
    "*_COOKIE",
    "AWS_*",
    "GH_*",
    "GITHUB_*",
    "GITLAB_*",
    "OPENAI_*",
    "ANTHROPIC_*",
    "AZURE_*",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "VAULT_*",
    "NPM_CONFIG_*",
    "KUBECONFIG",
    "DOCKER_HOST",
    "SSH_AUTH_SOCK",
    "SSH_AGENT_PID",
    "GPG_AGENT_INFO",
    "DBUS_SESSION_BUS_ADDRESS",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "XAUTHORITY",
    "XDG_RUNTIME_DIR",
];

/// The default process-count limit: generous for parallel builds, small enough to stop a
/// fork bomb from exhausting the host.
pub const MAX_PROCESSES: u32 = 4096;

/// The default limit on open file descriptors per process: far above what builds, test
/// runners and file watchers use (the usual soft limit is 1,024), far below the 1,048,576 a
/// hard limit often allows.
pub const MAX_OPEN_FILES: u32 = 65_536;
