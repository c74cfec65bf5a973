//! The core `etcd` module in Node: the etcd discovery backend's configuration (timeouts in
//! milliseconds); `await Discovery.etcd(config)` connects.

use std::time::Duration;

use dockfleet as df;

use crate::object;
use crate::Number;

object! { in
    #[doc = "Where etcd is (`endpoints` like `http://127.0.0.1:2379`), the key `prefix`, and the timeouts."]
    EtcdConfig => df::EtcdConfig { endpoints: Vec<String>, prefix: String, connect_timeout: Number<Duration>, request_timeout: Number<Duration> }
}
