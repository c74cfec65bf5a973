//! Output objects built by a JS function of their own shape, instead of property by property.
//!
//! napi defines an object's properties one call at a time, each naming its key as a C string that V8
//! decodes and interns and each taking V8's slow path through the object's map transitions: for an
//! `inspectContainer` result that was most of what the binding cost beyond the engine call. A small
//! JS function per type, `(a0, a1, …) => ({ id: a0, name: a1, … })`, compiled once per env, builds
//! the same object from an object literal (V8's own fast path) in one napi call: the same keys in the
//! same order, an absent `Option` as `null`, as napi-rs's conversion of these types gives.

use std::cell::RefCell;
use std::ptr;

use napi::sys;

/// A `#[napi(object)]` type's Rust field names, in declaration order.
pub(crate) struct Shape(pub(crate) &'static [&'static str]);

/// This thread's env and the factories made in it, by shape.
struct Factories {
    env: sys::napi_env,
    made: Vec<(*const Shape, sys::napi_ref)>,
}

thread_local! {
    static FACTORIES: RefCell<Option<Factories>> = const { RefCell::new(None) };
}

/// The env is going away: its references go with it.
unsafe extern "C" fn forget(_: *mut std::ffi::c_void) {
    FACTORIES.with(|f| f.borrow_mut().take());
}

/// `snake_case` → `camelCase`, as napi-rs names a field in JS.
fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.trim_start_matches("r#").chars() {
        if c == '_' {
            upper = !out.is_empty();
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The factory's source: `(function (a0, a1, …) { return { k0: a0, k1: a1, … } })`.
fn source(fields: &[&str]) -> String {
    let args: Vec<String> = (0..fields.len()).map(|i| format!("a{i}")).collect();
    let props: Vec<String> = fields.iter().enumerate().map(|(i, f)| format!("{}: a{i}", camel(f))).collect();
    format!("(function ({}) {{ return {{ {} }} }})", args.join(", "), props.join(", "))
}

impl Shape {
    /// The object of this shape with `values` (one per field, in order).
    ///
    /// # Safety
    /// On the JS thread of `env`, with a handle scope open.
    pub(crate) unsafe fn make(
        &'static self,
        env: sys::napi_env,
        values: &[sys::napi_value],
    ) -> napi::Result<sys::napi_value> {
        // SAFETY: the caller's contract; every napi call's status is checked.
        unsafe {
            let factory = self.factory(env)?;
            let mut recv = ptr::null_mut();
            let mut out = ptr::null_mut();
            napi::check_status!(sys::napi_get_undefined(env, &mut recv))?;
            napi::check_status!(sys::napi_call_function(env, recv, factory, values.len(), values.as_ptr(), &mut out))?;
            Ok(out)
        }
    }

    /// This shape's factory in `env`, compiled on first use.
    unsafe fn factory(&'static self, env: sys::napi_env) -> napi::Result<sys::napi_value> {
        let key: *const Shape = self;
        let cached = FACTORIES.with(|f| {
            let f = f.borrow();
            let f = f.as_ref().filter(|f| f.env == env)?;
            f.made.iter().find(|(k, _)| *k == key).map(|(_, r)| *r)
        });
        let mut value = ptr::null_mut();
        // SAFETY: the caller's contract; the reference was made in this env (checked above).
        unsafe {
            if let Some(r) = cached {
                napi::check_status!(sys::napi_get_reference_value(env, r, &mut value))?;
                return Ok(value);
            }
            let src = source(self.0);
            let mut script = ptr::null_mut();
            napi::check_status!(sys::napi_create_string_utf8(
                env,
                src.as_ptr().cast(),
                src.len() as isize,
                &mut script
            ))?;
            napi::check_status!(sys::napi_run_script(env, script, &mut value))?;
            let mut r = ptr::null_mut();
            napi::check_status!(sys::napi_create_reference(env, value, 1, &mut r))?;
            let fresh = FACTORIES.with(|f| {
                let mut f = f.borrow_mut();
                let fresh = f.as_ref().is_none_or(|f| f.env != env);
                let mine =
                    if fresh { f.insert(Factories { env, made: Vec::new() }) } else { f.as_mut().expect("same env") };
                mine.made.push((key, r));
                fresh
            });
            if fresh {
                napi::check_status!(sys::napi_add_env_cleanup_hook(env, Some(forget), ptr::null_mut()))?;
            }
            Ok(value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_source() {
        assert_eq!(camel("image_id"), "imageId");
        assert_eq!(camel("containers_running"), "containersRunning");
        assert_eq!(camel("id"), "id");
        assert_eq!(source(&["id", "exit_code"]), "(function (a0, a1) { return { id: a0, exitCode: a1 } })");
    }
}
