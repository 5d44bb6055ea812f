//! Lua health scripts, run as Argo CD runs them (its `util/lua` package): Lua 5.1, the live
//! object as the global `obj`, a returned table `{status = ..., message = ...}` whose status
//! must be one of the six health codes.
//!
//! Every run gets a fresh interpreter (as Argo CD gets a fresh `LState`), so no script sees
//! another's globals. What a script may use depends on where it comes from:
//! - users' scripts (`argocd-cm`) get Argo CD's restricted set: `package` (only
//!   `package.preload` resolves: no file or C module is loaded), the base library without
//!   the functions that load code (`dofile`, `loadfile`, `load`, `loadstring`), `table`, and
//!   an `os` with only `time` and `date`; `require("os")` returns that `os`;
//! - built-in scripts (a `--resource-customizations` directory) and `useOpenLibs` scripts get
//!   every standard library mlua calls safe (no `debug`, no C modules).
//!
//! No script can hang or crash the caller: an instruction-count hook ends a run after its
//! time limit (1 s, as Argo CD's context deadline), and `pcall`, `xpcall` and
//! `coroutine.resume` are wrapped so that a script cannot catch that error and go on; the
//! interpreter's allocator refuses memory beyond a limit. Syntax errors, runtime errors and
//! returns of the wrong type all come back as a [`LuaError`], which the caller reports as
//! `Unknown` with its message. One gap remains: the hook does not interrupt a single call
//! into the C string library (pattern matching with many quantifiers on a long string),
//! which only built-in and `useOpenLibs` scripts can reach.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use mlua::{HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value as LuaValue, VmState};
use serde_json::Value;

use super::verdict::{Health, HealthCode};

/// Argo CD's text for a status outside the six codes (`invalidHealthStatus`).
const INVALID_HEALTH_STATUS: &str = "Lua returned an invalid health status";

/// How often (in VM instructions) the hook looks at the clock: rare enough to cost nothing
/// measurable, often enough to stop within milliseconds of the deadline.
const HOOK_EVERY: u32 = 10_000;

/// Deepest object nesting converted into Lua tables (Kubernetes objects are far shallower;
/// the guard keeps the recursion bounded on any input).
const MAX_DEPTH: usize = 128;

/// What one run may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time of one run (Argo CD: 1 s).
    pub time: Duration,
    /// Bytes the interpreter may allocate, the object's tables included.
    pub memory: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            time: Duration::from_secs(1),
            memory: 64 << 20,
        }
    }
}

/// Which libraries a script runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Libraries {
    /// Argo CD's set for users' scripts: package, base, table, `os.time`/`os.date`.
    Restricted,
    /// Every safe standard library (built-in scripts, `useOpenLibs: true`).
    Open,
}

/// Why a script gave no verdict; its text becomes the `Unknown` health's message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LuaError {
    /// The interpreter could not be set up (out of memory before the script ran).
    #[error("setting up the Lua interpreter: {0}")]
    Setup(String),
    /// The live object could not be handed to the script.
    #[error("passing the object to Lua: {0}")]
    Object(String),
    /// The script does not compile.
    #[error("{0}")]
    Compile(String),
    /// The script raised an error.
    #[error("{0}")]
    Run(String),
    /// The script ran past its time limit.
    #[error("Lua script ran longer than {0:?}")]
    Timeout(Duration),
    /// The script allocated past the memory limit.
    #[error("Lua script used more than {0} bytes of memory")]
    Memory(usize),
    /// The script returned something other than a table or nil (Argo CD's text).
    #[error("expect table output from Lua script, not {0}")]
    ReturnType(&'static str),
}

/// Runs a health script against `live`. `Ok(None)`: the script returned nil or an empty
/// table, which Argo CD records as an empty health (no verdict; it counts as no health).
/// `name` names the chunk in error messages (`name:3: attempt to index ...`).
pub fn run(
    source: &str,
    name: &str,
    libraries: Libraries,
    live: &Value,
    limits: Limits,
) -> Result<Option<Health>, LuaError> {
    let lua = interpreter(libraries, limits)?;
    let deadline = Instant::now() + limits.time;
    let expired = Rc::new(Cell::new(false));
    let flag = expired.clone();
    lua.set_global_hook(
        HookTriggers::new().every_nth_instruction(HOOK_EVERY),
        move |_, _| {
            if flag.get() || Instant::now() >= deadline {
                flag.set(true);
                return Err(mlua::Error::RuntimeError("time limit exceeded".into()));
            }
            Ok(VmState::Continue)
        },
    )
    .map_err(|e| LuaError::Setup(e.to_string()))?;
    let fail = |e: mlua::Error| classify(&e, &expired, limits);
    guard_error_catchers(&lua, &expired).map_err(|e| LuaError::Setup(e.to_string()))?;
    let object = to_lua(&lua, live, 0).map_err(|e| match classify(&e, &expired, limits) {
        LuaError::Run(message) => LuaError::Object(message),
        other => other,
    })?;
    lua.globals().set("obj", object).map_err(fail)?;
    let chunk = lua
        .load(source)
        .set_name(format!("={name}"))
        .into_function()
        .map_err(fail)?;
    let returned: MultiValue = chunk.call(()).map_err(fail)?;
    // Argo CD reads the top of the stack: the last value returned.
    verdict(returned.into_iter().last().unwrap_or(LuaValue::Nil))
}

/// Whether `source` compiles (checked once when a script is loaded, so a broken script is
/// reported where it is configured).
pub fn check_syntax(source: &str, name: &str) -> Result<(), LuaError> {
    let lua = Lua::new_with(StdLib::NONE, LuaOptions::default())
        .map_err(|e| LuaError::Setup(e.to_string()))?;
    lua.load(source)
        .set_name(format!("={name}"))
        .into_function()
        .map(drop)
        .map_err(|e| LuaError::Compile(message_of(&e)))
}

/// A fresh interpreter with the libraries `libraries` allows and the memory limit set.
fn interpreter(libraries: Libraries, limits: Limits) -> Result<Lua, LuaError> {
    let setup = |e: mlua::Error| LuaError::Setup(e.to_string());
    let libs = match libraries {
        Libraries::Restricted => StdLib::PACKAGE | StdLib::TABLE | StdLib::OS,
        Libraries::Open => StdLib::ALL_SAFE,
    };
    let lua = Lua::new_with(libs | StdLib::JIT, LuaOptions::default()).map_err(setup)?;
    let globals = lua.globals();
    // LuaJIT's interpreter only: compiled traces would not run the instruction-count hook
    // that enforces the time limit. Scripts never see `jit` (they could turn it back on).
    lua.load(
        "jit.off() jit = nil package.loaded.jit = nil package.loaded['jit.opt'] = nil \
         package.preload['jit.util'] = nil package.loadlib = nil",
    )
    .set_name("=argosy setup")
    .exec()
    .map_err(setup)?;
    // `print` goes to the controller's log at debug level, not to its stdout.
    let print = lua
        .create_function(|_, args: MultiValue| {
            let line: Vec<String> = args
                .iter()
                .map(|v| v.to_string().unwrap_or_default())
                .collect();
            tracing::debug!(line = %line.join("\t"), "Lua health script printed");
            Ok(())
        })
        .map_err(setup)?;
    globals.set("print", print).map_err(setup)?;
    if libraries == Libraries::Restricted {
        restrict(&lua, &globals).map_err(setup)?;
    }
    lua.set_memory_limit(limits.memory).map_err(setup)?;
    Ok(lua)
}

/// Argo CD's restricted set: no code loading, only `os.time` and `os.date`, and `require`
/// resolving nothing but `package.preload` (where the safe `os` is, as Argo CD preloads it).
fn restrict(lua: &Lua, globals: &Table) -> mlua::Result<()> {
    // Lua 5.1's base library also opens `coroutine`; gopher-lua's (Argo CD's) does not.
    for unsafe_fn in ["dofile", "loadfile", "load", "loadstring", "coroutine"] {
        globals.raw_set(unsafe_fn, LuaValue::Nil)?;
    }
    let full_os: Table = globals.get("os")?;
    let safe_os = lua.create_table()?;
    for name in ["time", "date"] {
        safe_os.raw_set(name, full_os.get::<LuaValue>(name)?)?;
    }
    globals.raw_set("os", safe_os.clone())?;
    let package: Table = globals.get("package")?;
    let loaded: Table = package.get("loaded")?;
    loaded.raw_set("os", safe_os.clone())?;
    loaded.raw_set("coroutine", LuaValue::Nil)?;
    let preload: Table = package.get("preload")?;
    let os_loader = lua.create_function(move |_, ()| Ok(safe_os.clone()))?;
    preload.raw_set("os", os_loader)?;
    // Only the first searcher (package.preload): no Lua file, no C library.
    let loaders: Table = package.get("loaders")?;
    let preload_searcher: LuaValue = loaders.raw_get(1)?;
    let only_preload = lua.create_table()?;
    only_preload.raw_set(1, preload_searcher)?;
    package.raw_set("loaders", only_preload)?;
    package.raw_set("loadlib", LuaValue::Nil)?;
    package.raw_set("path", "")?;
    package.raw_set("cpath", "")?;
    Ok(())
}

/// Wraps the functions that catch errors (`pcall`, `xpcall`, `coroutine.resume`) so that,
/// once the time limit has passed, an error they caught is raised again: the hook's error
/// then reaches the top whatever the script wraps its loop in.
fn guard_error_catchers(lua: &Lua, expired: &Rc<Cell<bool>>) -> mlua::Result<()> {
    let flag = expired.clone();
    let is_expired = lua.create_function(move |_, ()| Ok(flag.get()))?;
    lua.load(
        r"
        local expired, raw_pcall, raw_xpcall, error = ...
        local function rethrow(ok, ...)
          if not ok and expired() then error((...), 0) end
          return ok, ...
        end
        pcall = function(f, ...) return rethrow(raw_pcall(f, ...)) end
        xpcall = function(f, handler) return rethrow(raw_xpcall(f, handler)) end
        if type(coroutine) == 'table' then
          local raw_resume = coroutine.resume
          coroutine.resume = function(co, ...) return rethrow(raw_resume(co, ...)) end
        end
        ",
    )
    .set_name("=argosy guard")
    .call::<()>((
        is_expired,
        lua.globals().get::<LuaValue>("pcall")?,
        lua.globals().get::<LuaValue>("xpcall")?,
        lua.globals().get::<LuaValue>("error")?,
    ))
}

/// The returned value as a verdict, as Argo CD's `ExecuteHealthLua` reads it.
fn verdict(returned: LuaValue) -> Result<Option<Health>, LuaError> {
    let table = match returned {
        LuaValue::Nil => return Ok(None),
        LuaValue::Table(table) => table,
        // Lua 5.1 has one number type; mlua tells whole numbers apart.
        LuaValue::Integer(_) => return Err(LuaError::ReturnType("number")),
        other => return Err(LuaError::ReturnType(other.type_name())),
    };
    let status = table.raw_get::<LuaValue>("status").unwrap_or(LuaValue::Nil);
    let message = table
        .raw_get::<LuaValue>("message")
        .unwrap_or(LuaValue::Nil);
    if matches!((&status, &message), (LuaValue::Nil, LuaValue::Nil))
        && table.pairs::<LuaValue, LuaValue>().next().is_none()
    {
        // An empty table: Argo CD decodes it as an empty health.
        return Ok(None);
    }
    let invalid = || {
        Ok(Some(Health::new(
            HealthCode::Unknown,
            INVALID_HEALTH_STATUS,
        )))
    };
    let code = match &status {
        LuaValue::String(s) => match HealthCode::parse(&s.to_string_lossy()) {
            Some(code) => code,
            None => return invalid(),
        },
        _ => return invalid(),
    };
    let message = match &message {
        LuaValue::Nil => String::new(),
        LuaValue::String(s) => s.to_string_lossy(),
        _ => return invalid(),
    };
    Ok(Some(Health::new(code, message)))
}

/// The error a failed step becomes: the deadline and the memory limit first (whatever the
/// script turned their errors into), else Lua's own message.
fn classify(e: &mlua::Error, expired: &Cell<bool>, limits: Limits) -> LuaError {
    if expired.get() {
        return LuaError::Timeout(limits.time);
    }
    match root(e) {
        mlua::Error::MemoryError(_) => LuaError::Memory(limits.memory),
        mlua::Error::SyntaxError { message, .. } => LuaError::Compile(message.clone()),
        other => LuaError::Run(message_of(other)),
    }
}

/// The innermost error (mlua wraps errors raised through Rust callbacks).
fn root(e: &mlua::Error) -> &mlua::Error {
    match e {
        mlua::Error::CallbackError { cause, .. } | mlua::Error::WithContext { cause, .. } => {
            root(cause)
        }
        other => other,
    }
}

/// Lua's message without mlua's "runtime error: " prefix or a traceback (Argo CD drops the
/// stack trace of errors that reach users too).
fn message_of(e: &mlua::Error) -> String {
    let message = match root(e) {
        mlua::Error::RuntimeError(message)
        | mlua::Error::MemoryError(message)
        | mlua::Error::SyntaxError { message, .. } => message.clone(),
        other => other.to_string(),
    };
    match message.split_once("\nstack traceback:") {
        Some((head, _)) => head.to_owned(),
        None => message,
    }
}

/// The object as Lua values, as Argo CD's `decodeValue`: objects and arrays become tables
/// (arrays from index 1), numbers Lua numbers, JSON null nil.
fn to_lua(lua: &Lua, value: &Value, depth: usize) -> mlua::Result<LuaValue> {
    if depth > MAX_DEPTH {
        return Err(mlua::Error::RuntimeError(format!(
            "the object is nested deeper than {MAX_DEPTH} levels"
        )));
    }
    Ok(match value {
        Value::Null => LuaValue::Nil,
        Value::Bool(b) => LuaValue::Boolean(*b),
        Value::Number(n) => LuaValue::Number(n.as_f64().unwrap_or_default()),
        Value::String(s) => LuaValue::String(lua.create_string(s)?),
        Value::Array(items) => {
            let table = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                table.raw_set(i + 1, to_lua(lua, item, depth + 1)?)?;
            }
            LuaValue::Table(table)
        }
        Value::Object(fields) => {
            let table = lua.create_table_with_capacity(0, fields.len())?;
            for (key, field) in fields {
                table.raw_set(key.as_str(), to_lua(lua, field, depth + 1)?)?;
            }
            LuaValue::Table(table)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run_with(source: &str, libraries: Libraries) -> Result<Option<Health>, LuaError> {
        let live = json!({"apiVersion": "example.com/v1", "kind": "Widget", "status": {"phase": "Ready", "count": 3}});
        run(source, "test", libraries, &live, Limits::default())
    }

    fn restricted(source: &str) -> Result<Option<Health>, LuaError> {
        run_with(source, Libraries::Restricted)
    }

    /// The expected value of a run that gave a verdict (compared with `run`'s result).
    #[allow(clippy::unnecessary_wraps)]
    fn health(code: HealthCode, message: &str) -> Result<Option<Health>, LuaError> {
        Ok(Some(Health::new(code, message)))
    }

    #[test]
    fn the_object_is_the_global_obj() {
        assert_eq!(
            restricted(
                r#"return {status = "Degraded", message = obj.status.phase .. " x" .. obj.status.count}"#
            ),
            health(HealthCode::Degraded, "Ready x3")
        );
        assert_eq!(
            restricted(r#"local hs = {}; hs.status = "Suspended"; return hs"#),
            health(HealthCode::Suspended, "")
        );
    }

    #[test]
    fn returns_are_checked_as_argo_cd_checks_them() {
        let invalid = health(HealthCode::Unknown, INVALID_HEALTH_STATUS);
        assert_eq!(restricted(r#"return {status = "Sleepy"}"#), invalid);
        assert_eq!(restricted(r#"return {status = "healthy"}"#), invalid);
        assert_eq!(restricted(r#"return {message = "no status"}"#), invalid);
        assert_eq!(restricted("return {status = 3}"), invalid);
        assert_eq!(
            restricted(r#"return {status = "Healthy", message = {}}"#),
            invalid
        );
        assert_eq!(restricted("return nil"), Ok(None));
        assert_eq!(restricted("return {}"), Ok(None));
        assert_eq!(restricted(""), Ok(None));
        assert_eq!(
            restricted(r#"return "Healthy""#),
            Err(LuaError::ReturnType("string"))
        );
        assert_eq!(restricted("return 1"), Err(LuaError::ReturnType("number")));
        assert_eq!(
            restricted("return true").map_err(|e| e.to_string()),
            Err("expect table output from Lua script, not boolean".to_owned())
        );
        // The last value returned is the one read, as Argo CD reads the top of the stack.
        assert_eq!(
            restricted(r#"return {status = "Healthy"}, "extra""#),
            Err(LuaError::ReturnType("string"))
        );
        for code in HealthCode::ALL {
            let script = format!("return {{status = {:?}, message = \"m\"}}", code.as_str());
            assert_eq!(restricted(&script), health(code, "m"));
        }
    }

    #[test]
    fn errors_name_the_script_and_line() {
        assert_eq!(
            restricted("\nreturn obj.spec.replicas"),
            Err(LuaError::Run(
                "test:2: attempt to index field 'spec' (a nil value)".to_owned()
            ))
        );
        assert_eq!(
            restricted("error('custom failure')"),
            Err(LuaError::Run("test:1: custom failure".to_owned()))
        );
        let Err(LuaError::Compile(message)) = restricted("return {status = ") else {
            panic!("a syntax error is a compile error");
        };
        assert!(message.starts_with("test:1:"), "{message}");
        assert!(check_syntax("return {", "cm key").is_err());
        assert_eq!(check_syntax("return {}", "cm key"), Ok(()));
    }

    #[test]
    fn users_scripts_get_only_argo_cds_libraries() {
        let nil = |expr: &str| {
            let script = format!(
                "if {expr} == nil then return {{status = 'Healthy'}} end return {{status = 'Degraded'}}"
            );
            assert_eq!(
                restricted(&script),
                health(HealthCode::Healthy, ""),
                "{expr} is reachable"
            );
            assert_eq!(
                run_with(&script, Libraries::Open),
                health(HealthCode::Degraded, ""),
                "{expr} is missing from the open libraries"
            );
        };
        for expr in [
            "io",
            "string",
            "math",
            "coroutine",
            "os.execute",
            "os.getenv",
            "os.remove",
            "os.exit",
            "dofile",
            "loadfile",
            "load",
            "loadstring",
        ] {
            nil(expr);
        }
        // Never reachable, with any libraries.
        for expr in ["debug", "package.loadlib"] {
            let script = format!(
                "if {expr} == nil then return {{status = 'Healthy'}} end return {{status = 'Degraded'}}"
            );
            assert_eq!(
                run_with(&script, Libraries::Open),
                health(HealthCode::Healthy, ""),
                "{expr}"
            );
        }
        // What Argo CD keeps: table, os.time/os.date, require("os").
        assert_eq!(
            restricted(
                r#"local os2 = require("os")
                   local n = table.getn({1, 2})
                   if os2.time() > 0 and type(os.date("%Y")) == "string" and n == 2 then
                     return {status = "Healthy", message = table.concat({"a", "b"}, ",")}
                   end"#
            ),
            health(HealthCode::Healthy, "a,b")
        );
        // require finds no file and no C library.
        let Err(LuaError::Run(message)) = restricted(r#"require("io")"#) else {
            panic!("require of another library must fail");
        };
        assert!(message.contains("module 'io' not found"), "{message}");
        assert!(matches!(
            restricted("return io.open('/etc/passwd')"),
            Err(LuaError::Run(_))
        ));
        assert!(matches!(
            restricted("os.execute('true')"),
            Err(LuaError::Run(_))
        ));
    }

    #[test]
    fn no_script_runs_past_its_time_limit() {
        let limits = Limits {
            time: Duration::from_millis(100),
            ..Limits::default()
        };
        let live = json!({});
        for script in [
            "while true do end",
            "while true do pcall(function() while true do end end) end",
            "while true do xpcall(function() while true do end end, function(e) return e end) end",
            "local function f() return f() end while true do pcall(f) end",
            "while true do coroutine.resume(coroutine.create(function() while true do end end)) end",
        ] {
            let started = Instant::now();
            assert_eq!(
                run(script, "loop", Libraries::Open, &live, limits),
                Err(LuaError::Timeout(limits.time)),
                "{script}"
            );
            // Generous: the point is that it ends at all.
            assert!(started.elapsed() < Duration::from_secs(30), "{script}");
        }
    }

    #[test]
    fn no_script_allocates_past_its_memory_limit() {
        let limits = Limits {
            memory: 8 << 20,
            ..Limits::default()
        };
        let live = json!({});
        for script in [
            "local t = {} for i = 1, 1e9 do t[i] = {i} end",
            "local s = 'x' while true do s = s .. s end",
        ] {
            assert_eq!(
                run(script, "hog", Libraries::Open, &live, limits),
                Err(LuaError::Memory(limits.memory)),
                "{script}"
            );
        }
        // Caught in a loop, the memory error ends at the deadline instead.
        let quick = Limits {
            time: Duration::from_millis(100),
            ..limits
        };
        assert_eq!(
            run(
                "while true do pcall(function() local t = {} for i = 1, 1e9 do t[i] = i end end) end",
                "hog",
                Libraries::Open,
                &live,
                quick
            ),
            Err(LuaError::Timeout(quick.time))
        );
    }

    #[test]
    fn objects_convert_as_argo_cd_decodes_them() {
        let live = json!({"a": [1, 2.5, "x", null, true], "b": null, "c": {}});
        let script = r#"
            local a = obj.a
            if a[1] == 1 and a[2] == 2.5 and a[3] == "x" and a[4] == nil and a[5] == true
               and obj.b == nil and type(obj.c) == "table" then
              return {status = "Healthy"}
            end
            return {status = "Degraded"}"#;
        assert_eq!(
            run(script, "t", Libraries::Restricted, &live, Limits::default()),
            health(HealthCode::Healthy, "")
        );
        let mut deep = json!(1);
        for _ in 0..=MAX_DEPTH + 1 {
            deep = json!([deep]);
        }
        assert!(matches!(
            run(
                "return nil",
                "t",
                Libraries::Restricted,
                &deep,
                Limits::default()
            ),
            Err(LuaError::Object(_))
        ));
    }
}
