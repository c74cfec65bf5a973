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
identity!(String, bool, u32, i64, f64, ());

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

/// JS numbers: byte counts and ports travel as `number`.
impl Conv<i64> for u64 {
    fn conv(self) -> i64 {
        self.min(i64::MAX as u64) as i64
    }
}
impl Conv<u64> for i64 {
    fn conv(self) -> u64 {
        self.max(0) as u64
    }
}
impl Conv<u32> for u16 {
    fn conv(self) -> u32 {
        self.into()
    }
}
impl Conv<u16> for u32 {
    fn conv(self) -> u16 {
        self.min(u16::MAX as u32) as u16
    }
}

/// Durations are milliseconds in Node, as in `setTimeout`.
impl Conv<f64> for std::time::Duration {
    fn conv(self) -> f64 {
        self.as_secs_f64() * 1000.0
    }
}
impl Conv<std::time::Duration> for f64 {
    fn conv(self) -> std::time::Duration {
        std::time::Duration::try_from_secs_f64(self.max(0.0) / 1000.0).unwrap_or(std::time::Duration::MAX)
    }
}

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

/// Declares a plain JS object type mirroring a core struct.
/// `out`: every field present (values coming from dockfleet).
/// `in`: every field optional; a missing one takes the core type's default (options and specs).
macro_rules! object {
    (out $(#[doc = $doc:tt])* $js:ident => $core:path { $($(#[doc = $fdoc:tt])* $f:ident : $t:ty),* $(,)? }) => {
        $(#[doc = $doc])*
        #[napi_derive::napi(object, object_to_js = false)]
        #[derive(Clone, Debug)]
        pub struct $js { $( $(#[doc = $fdoc])* pub $f: $t, )* }

        crate::to_js!($js { $($f),* });

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
        #[napi_derive::napi(object, object_to_js = false)]
        #[derive(Clone, Debug, Default)]
        pub struct $js { $( $(#[doc = $fdoc])* pub $f: Option<$t>, )* }

        crate::to_js!($js { $($f),* });

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

/// A `#[napi(object)]` type's conversion to JS through its shape's factory (see `shape`).
macro_rules! to_js {
    ($js:ident { $($f:ident),* }) => {
        impl napi::bindgen_prelude::ToNapiValue for $js {
            unsafe fn to_napi_value(env: napi::sys::napi_env, val: Self) -> napi::Result<napi::sys::napi_value> {
                static SHAPE: crate::shape::Shape = crate::shape::Shape(&[$(stringify!($f)),*]);
                // SAFETY: on the JS thread with its env, as napi calls `to_napi_value`.
                unsafe {
                    let values = [$( napi::bindgen_prelude::ToNapiValue::to_napi_value(env, val.$f)? ),*];
                    SHAPE.make(env, &values)
                }
            }
        }
    };
}
pub(crate) use to_js;

/// Runs a core future on napi's tokio runtime as a Promise. Rejections are `Error`s with `.code` set
/// to the dockfleet code (and `.cause` to the chain); panics reject with code `internal`.
pub(crate) fn call<'env, T, J, F>(env: &'env Env, fut: F) -> Result<PromiseRaw<'env, J>>
where
    F: std::future::Future<Output = dockfleet::Result<T>> + Send + 'static,
    T: Conv<J> + Send + 'static,
    J: ToNapiValue + 'static,
{
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
            #[napi]
            pub fn next<'env>(&self, env: &'env napi::Env) -> napi::Result<napi::bindgen_prelude::PromiseRaw<'env, Option<$js_item>>> {
                let inner = self.inner.clone();
                crate::call(env, async move { inner.next().await })
            }

            /// Stops the stream and releases its connection.
            #[napi]
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
