//! The plain JS objects of the binding's `#[napi(object)]` types, both ways.
//!
//! Out: built by a JS function of their own shape, instead of property by property. napi defines an
//! object's properties one call at a time, each naming its key as a C string that V8 decodes and
//! interns and each taking V8's slow path through the object's map transitions: for an
//! `inspectContainer` result that was most of what the binding cost beyond the engine call. A small
//! JS function per type, `(a0, a1, …) => ({ id: a0, name: a1, … })`, compiled once per env, builds
//! the same object from an object literal (V8's own fast path) in one napi call: the same keys in the
//! same order, an absent `Option` as `null`, as napi-rs's conversion of these types gives.
//!
//! In: read field by field as napi-rs reads them (an `undefined` field is absent, an error names the
//! field: `… on ContainerSpec.ports`), after checking that the value is an object at all. napi-rs
//! reads the fields of whatever it is given, so a string or a number passed for an options object
//! read as one with no field set (`DockerHost.connect('tcp://…')` connected to the local socket), and
//! an array passed for a record of names to values read as one keyed `0`, `1`, … (`env: ['A=1']` set
//! a variable named `0`). Both are `invalid_argument` errors here, and so is a key the type does
//! not have (unless it is `undefined`).

use std::cell::RefCell;
use std::ffi::CString;
use std::ptr;
use std::sync::OnceLock;

use napi::bindgen_prelude::{FromNapiValue, TypeName, ValidateNapiValue};
use napi::{sys, Error, Status};

/// A `#[napi(object)]` type's Rust field names, in declaration order, and their JS names.
pub(crate) struct Shape {
    fields: &'static [&'static str],
    /// The JS (camelCase) names, as C strings for napi: made on first read.
    js_names: OnceLock<Vec<(String, CString)>>,
}

/// A `#[napi(object)]` type with its [`Shape`] (one `static` per type).
pub(crate) trait Shaped {
    /// The type's shape.
    fn shape() -> &'static Shape;
}

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

/// The JS type of `value`, as `typeof` names it (`null` and arrays by their own names).
unsafe fn js_type(env: sys::napi_env, value: sys::napi_value) -> napi::Result<&'static str> {
    // SAFETY: the caller's contract (the JS thread of `env`).
    unsafe {
        let mut t = 0;
        napi::check_status!(sys::napi_typeof(env, value, &mut t))?;
        Ok(match t {
            sys::ValueType::napi_undefined => "undefined",
            sys::ValueType::napi_null => "null",
            sys::ValueType::napi_boolean => "boolean",
            sys::ValueType::napi_number => "number",
            sys::ValueType::napi_string => "string",
            sys::ValueType::napi_symbol => "symbol",
            sys::ValueType::napi_function => "function",
            sys::ValueType::napi_bigint => "bigint",
            sys::ValueType::napi_external => "external",
            _ => {
                let mut array = false;
                napi::check_status!(sys::napi_is_array(env, value, &mut array))?;
                if array {
                    "array"
                } else {
                    "object"
                }
            }
        })
    }
}

/// What a value of the type napi-rs names `ty` is, for an error.
fn expected(ty: &str) -> &str {
    match ty {
        "HashMap" | "BTreeMap" => "an object of names to values",
        "Array<T>" => "an array",
        "String" | "string" => "a string",
        "bool" | "boolean" => "a boolean",
        "number" | "f64" => "a number",
        _ => "an object",
    }
}

/// An `invalid_argument` error (napi's `ObjectExpected`, which `dockfleet.js` codes so) for `got`.
fn object_expected(what: &str, got: &str) -> Error {
    Error::new(Status::ObjectExpected, format!("expected {what}, got {got}"))
}

impl Shape {
    /// The shape of a type with these Rust field names, in declaration order.
    pub(crate) const fn new(fields: &'static [&'static str]) -> Self {
        Shape { fields, js_names: OnceLock::new() }
    }

    fn js_names(&self) -> &[(String, CString)] {
        self.js_names.get_or_init(|| {
            self.fields
                .iter()
                .map(|f| {
                    let name = camel(f);
                    let c = CString::new(name.clone()).expect("a Rust identifier has no NUL");
                    (name, c)
                })
                .collect()
        })
    }

    /// Reads a value of the type `ty` (its JS name, for errors): `read(fields)` reads its fields
    /// through `fields`, in declaration order, after the value is checked to be an object (not a
    /// primitive, `null`, `undefined` or an array). A key the type does not have is an error (as an
    /// unknown keyword argument is in Python), unless its value is `undefined`: a misspelt option
    /// (`requestTimeoutMs` for `requestTimeout`) would otherwise be dropped without a word.
    ///
    /// # Safety
    /// On the JS thread of `env`, with a handle scope open.
    pub(crate) unsafe fn read<T>(
        &'static self,
        env: sys::napi_env,
        value: sys::napi_value,
        ty: &'static str,
        read: impl FnOnce(&mut Fields) -> napi::Result<T>,
    ) -> napi::Result<T> {
        // SAFETY: the caller's contract.
        let got = unsafe { js_type(env, value)? };
        if got != "object" {
            return Err(object_expected(&format!("an object ({ty})"), got));
        }
        let out = read(&mut Fields { env, obj: value, ty, names: self.js_names().iter(), last: "" })?;
        // SAFETY: the caller's contract.
        unsafe { self.no_unknown_keys(env, value, ty)? };
        Ok(out)
    }

    /// Fails on an enumerable key of `obj` that is none of this shape's fields and not `undefined`.
    ///
    /// # Safety
    /// On the JS thread of `env`, with a handle scope open; `obj` an object.
    unsafe fn no_unknown_keys(&'static self, env: sys::napi_env, obj: sys::napi_value, ty: &str) -> napi::Result<()> {
        // SAFETY: the caller's contract; every napi call's status is checked.
        unsafe {
            let mut keys = ptr::null_mut();
            napi::check_status!(sys::napi_get_property_names(env, obj, &mut keys))?;
            let mut len = 0;
            napi::check_status!(sys::napi_get_array_length(env, keys, &mut len))?;
            for i in 0..len {
                let mut key = ptr::null_mut();
                napi::check_status!(sys::napi_get_element(env, keys, i, &mut key))?;
                let key = String::from_napi_value(env, key)?;
                if self.js_names().iter().any(|(n, _)| *n == key) {
                    continue;
                }
                let c_key =
                    CString::new(key.as_str()).map_err(|_| Error::new(Status::InvalidArg, "a key with a NUL"))?;
                let mut v = ptr::null_mut();
                napi::check_status!(sys::napi_get_named_property(env, obj, c_key.as_ptr(), &mut v))?;
                if js_type(env, v)? != "undefined" {
                    let known: Vec<&str> = self.js_names().iter().map(|(n, _)| n.as_str()).collect();
                    return Err(Error::new(
                        Status::InvalidArg,
                        format!("unknown field `{key}` on {ty} (its fields: {})", known.join(", ")),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The fields of one object being read, in declaration order: see [`Shape::read`].
pub(crate) struct Fields {
    env: sys::napi_env,
    obj: sys::napi_value,
    ty: &'static str,
    names: std::slice::Iter<'static, (String, CString)>,
    /// The JS name of the field read last.
    last: &'static str,
}

impl Fields {
    /// The next field, `None` when it is `undefined` (absent), as napi-rs reads an optional field. A
    /// record (`Record<string, …>`, a Rust map) must be an object and not an array, and an array one.
    /// An error names the field.
    pub(crate) fn next<T: FromNapiValue + ValidateNapiValue>(&mut self) -> napi::Result<Option<T>> {
        let (name, c_name) = self.names.next().expect("one name per field");
        self.last = name;
        let named = |mut e: Error| {
            e.reason = format!("{} on {}.{}", e.reason, self.ty, name);
            e
        };
        // SAFETY: made by `Shape::read`, whose caller is on the JS thread of `env` with a scope open.
        unsafe {
            let mut raw = ptr::null_mut();
            napi::check_status!(sys::napi_get_named_property(self.env, self.obj, c_name.as_ptr(), &mut raw))?;
            let got = js_type(self.env, raw)?;
            match (got, T::type_name()) {
                ("undefined", _) => Ok(None),
                // An `Option` reads `null` as `None`; anything else refuses it, naming the field (napi-rs
                // would throw V8's TypeError for a record, with no code).
                ("null", ty) => match T::validate(self.env, raw) {
                    Ok(_) => T::from_napi_value(self.env, raw).map(Some).map_err(named),
                    Err(_) => {
                        Err(named(Error::new(Status::InvalidArg, format!("expected {}, got null", expected(ty)))))
                    }
                },
                (_, ty @ ("HashMap" | "BTreeMap")) if got != "object" => Err(named(object_expected(expected(ty), got))),
                (_, "Array<T>") if got != "array" => {
                    Err(named(Error::new(Status::ArrayExpected, format!("expected an array, got {got}"))))
                }
                _ => T::from_napi_value(self.env, raw).map(Some).map_err(named),
            }
        }
    }

    /// The next field, required: `undefined` is an error unless `T` is an `Option` (as napi-rs reads
    /// a required field).
    pub(crate) fn required<T: FromNapiValue + ValidateNapiValue>(&mut self) -> napi::Result<T> {
        match self.next::<T>()? {
            Some(v) => Ok(v),
            None => {
                // SAFETY: as in `next`.
                unsafe {
                    let mut undefined = ptr::null_mut();
                    napi::check_status!(sys::napi_get_undefined(self.env, &mut undefined))?;
                    T::from_napi_value(self.env, undefined).map_err(|_| {
                        Error::new(Status::InvalidArg, format!("Missing field `{}` on {}", self.last, self.ty))
                    })
                }
            }
        }
    }
}

/// A record of names to values passed as an argument (`labels`): checked to be an object, as a
/// record field of an object type is (see [`Fields::next`]); napi-rs reads an array as one keyed `0`,
/// `1`, … and a string as one keyed by its letters. Named `Record` for `index.d.ts`, which writes it
/// as `Record<K, V>`.
pub struct Record<K, V>(pub(crate) std::collections::HashMap<K, V>);

impl<V: FromNapiValue> FromNapiValue for Record<String, V> {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
        // SAFETY: napi calls `from_napi_value` on the JS thread with its env.
        unsafe {
            let got = js_type(env, value)?;
            if got != "object" {
                return Err(object_expected("an object of names to values", got));
            }
            std::collections::HashMap::from_napi_value(env, value).map(Record)
        }
    }
}

impl<K, V> TypeName for Record<K, V> {
    fn type_name() -> &'static str {
        "HashMap"
    }
    fn value_type() -> napi::ValueType {
        napi::ValueType::Object
    }
}

impl<V: FromNapiValue> ValidateNapiValue for Record<String, V> {}

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
            let src = source(self.fields);
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
