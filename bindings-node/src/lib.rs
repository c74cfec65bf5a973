//! The napi module behind `require('dockfleet')`.
//!
//! One file per core module; this file holds the conversion plumbing they share. No dockfleet logic
//! lives here: types are mirrored as plain JS objects (camelCase), errors become `Error`s whose `.code`
//! is the stable dockfleet code, and futures become Promises.

#![deny(clippy::all)]
// napi-derive registers exports only outside `cfg(test)`, so test builds would see them as dead code.
#![cfg_attr(test, allow(dead_code))]

use std::collections::{BTreeMap, HashMap};

use napi::bindgen_prelude::*;

mod abort;
mod backend;
mod balancer;
mod discovery;
mod docker;
mod embed;
mod error;
mod etcd;
mod fleet;
mod health;
mod host;
mod image;
mod proxy;
mod reconcile;
mod registrator;
mod registry;
mod render;
mod rollout;
mod schedule;
mod shape;
mod spec;
mod stack;
mod stats;
mod swarm;

/// Converts between a core type and its JS mirror (and between plain values).
pub(crate) trait Conv<T> {
    fn conv(self) -> T;
}

macro_rules! identity {
    ($($t:ty),*) => { $(impl Conv<$t> for $t { fn conv(self) -> $t { self } })* };
}
identity!(String, bool, f64, ());

impl<A: Conv<B>, B> Conv<Vec<B>> for Vec<A> {
    fn conv(self) -> Vec<B> {
        self.into_iter().map(Conv::conv).collect()
    }
}

impl<A: Conv<B>, B> Conv<Option<B>> for Option<A> {
    fn conv(self) -> Option<B> {
        self.map(Conv::conv)
    }
}

impl<A: Conv<B>, B> Conv<HashMap<String, B>> for BTreeMap<String, A> {
    fn conv(self) -> HashMap<String, B> {
        self.into_iter().map(|(k, v)| (k, v.conv())).collect()
    }
}

impl<A: Conv<B>, B> Conv<BTreeMap<String, B>> for HashMap<String, A> {
    fn conv(self) -> BTreeMap<String, B> {
        self.into_iter().map(|(k, v)| (k, v.conv())).collect()
    }
}

impl Conv<Vec<String>> for std::collections::BTreeSet<String> {
    fn conv(self) -> Vec<String> {
        self.into_iter().collect()
    }
}

impl Conv<std::collections::BTreeSet<String>> for Vec<String> {
    fn conv(self) -> std::collections::BTreeSet<String> {
        self.into_iter().collect()
    }
}

/// Nanosecond timestamps exceed a JS number's exact range (2^53): they travel as `bigint`.
impl Conv<BigInt> for i64 {
    fn conv(self) -> BigInt {
        BigInt::from(self)
    }
}
impl Conv<i64> for BigInt {
    fn conv(self) -> i64 {
        self.get_i64().0
    }
}

/// A number from JS, checked against the core type it stands for: an integer must be integral and
/// within that type's range (and JS's exact range, ±2^53), a duration (milliseconds, as in
/// `setTimeout`) finite and not negative. napi's own conversions change bad numbers silently instead:
/// `-1` as a `u32` wraps to 4294967295, `1.5` truncates to 1, `NaN` as an `i64` is 0. A refused number
/// throws before anything runs; `dockfleet.js` gives the error the code `invalid_argument`, and napi
/// appends the field (`… on ServicePort.target on ServiceSpec.ports`).
///
/// Named `Number` because napi's type generator writes that name as `number` in `index.d.ts`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Number<T>(pub T);

/// A core type that travels as a JS number.
pub(crate) trait JsNumber: Sized {
    /// The value `v` stands for, or why it stands for none.
    fn from_f64(v: f64) -> std::result::Result<Self, String>;
    /// The value as a JS number.
    fn to_f64(self) -> f64;
}

/// `v` as JS writes it (`Infinity`, not Rust's `inf`).
fn js(v: f64) -> String {
    match v {
        f64::INFINITY => "Infinity".into(),
        f64::NEG_INFINITY => "-Infinity".into(),
        _ => v.to_string(),
    }
}

/// A number argument of a function, checked as a [`Number`] field is; the error names the argument.
pub(crate) fn arg<T: JsNumber>(name: &str, v: f64) -> Result<T> {
    T::from_f64(v).map_err(|m| Error::new(Status::InvalidArg, format!("{m} on argument `{name}`")))
}

/// The largest integer a JS number holds exactly (`Number.MAX_SAFE_INTEGER`).
const MAX_SAFE: f64 = 9_007_199_254_740_991.0;

macro_rules! js_integer {
    ($($t:ty),*) => { $(
        impl JsNumber for $t {
            fn from_f64(v: f64) -> std::result::Result<Self, String> {
                let (min, max) = ((<$t>::MIN as f64).max(-MAX_SAFE), (<$t>::MAX as f64).min(MAX_SAFE));
                // NaN and ±Infinity have no zero fraction.
                if v.fract() == 0.0 && (min..=max).contains(&v) {
                    Ok(v as $t)
                } else {
                    Err(format!("{} is not an integer from {min} to {max}", js(v)))
                }
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
        }
    )* };
}
js_integer!(u8, u16, i32, u32, u64, i64);

impl JsNumber for std::time::Duration {
    fn from_f64(v: f64) -> std::result::Result<Self, String> {
        if v.is_finite() && v >= 0.0 {
            std::time::Duration::try_from_secs_f64(v / 1000.0)
                .map_err(|_| format!("{v} ms is beyond the longest duration"))
        } else {
            Err(format!("{} is not a duration in milliseconds (finite, not negative)", js(v)))
        }
    }
    fn to_f64(self) -> f64 {
        self.as_secs_f64() * 1000.0
    }
}

impl<T: JsNumber> FromNapiValue for Number<T> {
    unsafe fn from_napi_value(env: napi::sys::napi_env, value: napi::sys::napi_value) -> Result<Self> {
        let mut v = 0.0;
        // SAFETY: napi calls `from_napi_value` on the JS thread with its env.
        let status = unsafe { napi::sys::napi_get_value_double(env, value, &mut v) };
        if status == napi::sys::Status::napi_number_expected {
            let got = napi::type_of!(env, value)?;
            return Err(Error::new(Status::NumberExpected, format!("expected a number, got {got}")));
        }
        napi::check_status!(status)?;
        T::from_f64(v).map(Number).map_err(|m| Error::new(Status::InvalidArg, m))
    }
}

impl<T: JsNumber> ToNapiValue for Number<T> {
    unsafe fn to_napi_value(env: napi::sys::napi_env, val: Self) -> Result<napi::sys::napi_value> {
        // SAFETY: napi calls `to_napi_value` on the JS thread with its env.
        unsafe { f64::to_napi_value(env, val.0.to_f64()) }
    }
}

impl<T: JsNumber> TypeName for Number<T> {
    fn type_name() -> &'static str {
        "number"
    }
    fn value_type() -> ValueType {
        ValueType::Number
    }
}

impl<T: JsNumber> ValidateNapiValue for Number<T> {}

impl<T> Conv<T> for Number<T> {
    fn conv(self) -> T {
        self.0
    }
}
macro_rules! to_number {
    ($($t:ty),*) => { $(impl Conv<Number<$t>> for $t { fn conv(self) -> Number<$t> { Number(self) } })* };
}
to_number!(u8, u16, i32, u32, u64, i64, std::time::Duration);

impl Conv<String> for std::path::PathBuf {
    fn conv(self) -> String {
        self.to_string_lossy().into_owned()
    }
}
impl Conv<std::path::PathBuf> for String {
    fn conv(self) -> std::path::PathBuf {
        self.into()
    }
}

/// Declares a plain JS object type mirroring a core struct, converted both ways by its [`shape`].
/// `out`: every field present (values coming from dockfleet).
/// `in`: every field optional; a missing one takes the core type's default (options and specs).
macro_rules! object {
    (out $(#[doc = $doc:tt])* $js:ident => $core:path { $($(#[doc = $fdoc:tt])* $f:ident : $t:ty),* $(,)? }) => {
        $(#[doc = $doc])*
        #[napi_derive::napi(object, object_to_js = false, object_from_js = false)]
        #[derive(Clone, Debug)]
        pub struct $js { $( $(#[doc = $fdoc])* pub $f: $t, )* }

        crate::shaped!($js { $($f),* });
        crate::from_js!($js required { $($f: $t),* });

        impl crate::Conv<$js> for $core {
            fn conv(self) -> $js {
                $js { $( $f: crate::Conv::conv(self.$f), )* }
            }
        }

        impl crate::Conv<$core> for $js {
            fn conv(self) -> $core {
                $core { $( $f: crate::Conv::conv(self.$f), )* }
            }
        }
    };
    (in $(#[doc = $doc:tt])* $js:ident => $core:path { $($(#[doc = $fdoc:tt])* $f:ident : $t:ty),* $(,)? }) => {
        $(#[doc = $doc])*
        #[napi_derive::napi(object, object_to_js = false, object_from_js = false)]
        #[derive(Clone, Debug, Default)]
        pub struct $js { $( $(#[doc = $fdoc])* pub $f: Option<$t>, )* }

        crate::shaped!($js { $($f),* });
        crate::from_js!($js next { $($f: $t),* });

        impl crate::Conv<$js> for $core {
            fn conv(self) -> $js {
                $js { $( $f: Some(crate::Conv::conv(self.$f)), )* }
            }
        }

        impl crate::Conv<$core> for $js {
            fn conv(self) -> $core {
                #[allow(unused_variables)]
                let d = <$core as Default>::default();
                $core { $( $f: match self.$f { Some(v) => crate::Conv::conv(v), None => d.$f }, )* }
            }
        }
    };
}
pub(crate) use object;

/// A `#[napi(object)]` type's shape, and its conversion to JS through the shape's factory (see `shape`).
macro_rules! shaped {
    ($js:ident { $($f:ident),* }) => {
        impl crate::shape::Shaped for $js {
            fn shape() -> &'static crate::shape::Shape {
                static SHAPE: crate::shape::Shape = crate::shape::Shape::new(&[$(stringify!($f)),*]);
                &SHAPE
            }
        }

        impl napi::bindgen_prelude::ToNapiValue for $js {
            unsafe fn to_napi_value(env: napi::sys::napi_env, val: Self) -> napi::Result<napi::sys::napi_value> {
                // SAFETY: on the JS thread with its env, as napi calls `to_napi_value`.
                unsafe {
                    let values = [$( napi::bindgen_prelude::ToNapiValue::to_napi_value(env, val.$f)? ),*];
                    <$js as crate::shape::Shaped>::shape().make(env, &values)
                }
            }
        }
    };
}
pub(crate) use shaped;

/// A `#[napi(object)]` type's conversion from JS: checked to be an object, then each field read, in
/// declaration order, by `$read` (`next`: optional, `required`), a method of [`shape::Fields`].
macro_rules! from_js {
    ($js:ident $read:ident { $($f:ident : $t:ty),* }) => {
        impl napi::bindgen_prelude::FromNapiValue for $js {
            unsafe fn from_napi_value(env: napi::sys::napi_env, value: napi::sys::napi_value) -> napi::Result<Self> {
                let shape = <$js as crate::shape::Shaped>::shape();
                // SAFETY: on the JS thread with its env, as napi calls `from_napi_value`.
                unsafe {
                    #[allow(unused_variables, unused_mut)]
                    shape.read(env, value, stringify!($js), |fields| Ok($js { $($f: fields.$read::<$t>()?),* }))
                }
            }
        }

        impl napi::bindgen_prelude::ValidateNapiValue for $js {}
    };
}
pub(crate) use from_js;

/// Runs a core future on napi's tokio runtime as a Promise. Rejections are `Error`s with `.code` set
/// to the dockfleet code (and `.cause` to the chain); panics reject with code `internal`; an abort of
/// the call's `AbortSignal` (see [`abort`]) rejects with `cancelled`.
pub(crate) fn call<'env, T, J, F>(env: &'env Env, fut: F) -> Result<PromiseRaw<'env, J>>
where
    F: std::future::Future<Output = dockfleet::Result<T>> + Send + 'static,
    T: Conv<J> + Send + 'static,
    J: ToNapiValue + 'static,
{
    let fut = abort::bind(fut);
    env.spawn_future_with_callback(async move { Ok(dockfleet::catch_panic(fut).await) }, |env, r| outcome(env, r))
}

/// A call's outcome as its JS value or its JS error (on the JS thread).
pub(crate) fn outcome<T: Conv<J>, J>(env: &Env, r: dockfleet::Result<T>) -> Result<J> {
    r.map(Conv::conv).map_err(|e| error::js_error(env, e))
}

/// Declares a stream class over a core stream: `await s.next()` gives the next item or `null` at the
/// end, `await s.close()` stops it; `dockfleet.js` adds `[Symbol.asyncIterator]` for `for await`.
macro_rules! stream_class {
    ($(#[doc = $doc:tt])* $name:ident, $core_item:ty => $js_item:ty) => {
        $(#[doc = $doc])*
        #[napi_derive::napi]
        pub struct $name {
            pub(crate) inner: dockfleet::SharedStream<$core_item>,
        }

        impl $name {
            pub(crate) fn new(s: dockfleet::ResultStream<$core_item>) -> Self {
                Self { inner: dockfleet::SharedStream::new(s) }
            }
        }

        #[napi_derive::napi]
        impl $name {
            /// The next item, or `null` when the stream has ended.
            #[napi(catch_unwind)]
            pub fn next<'env>(&self, env: &'env napi::Env) -> napi::Result<napi::bindgen_prelude::PromiseRaw<'env, Option<$js_item>>> {
                let inner = self.inner.clone();
                crate::call(env, async move { inner.next().await })
            }

            /// Stops the stream and releases its connection.
            #[napi(catch_unwind)]
            pub fn close<'env>(&self, env: &'env napi::Env) -> napi::Result<napi::bindgen_prelude::PromiseRaw<'env, ()>> {
                let inner = self.inner.clone();
                crate::call(env, async move {
                    inner.close().await;
                    Ok(())
                })
            }
        }
    };
}
pub(crate) use stream_class;
