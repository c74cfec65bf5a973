//! Moving images between hosts without a registry: [`copy_image`] streams `docker save` from one
//! engine straight into `docker load` on another, with byte progress and no temporary file.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};

use crate::error::Error;
use crate::host::{CopyProgress, Host, ResultStream};

/// How often [`copy_image`] reports progress while bytes flow.
pub const COPY_PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// Copies `reference` from `source` to `target`, streaming the archive through this process.
///
/// The stream yields a first event with the expected size, then progress about every
/// [`COPY_PROGRESS_INTERVAL`], then a last event with `done = true` once `target` has loaded the image.
/// Dropping the stream cancels the copy. A missing image fails with `not_found` before anything is sent.
pub fn copy_image(source: Arc<dyn Host>, target: Arc<dyn Host>, reference: &str) -> ResultStream<CopyProgress> {
    let reference = reference.to_string();
    Box::pin(async_stream::try_stream! {
        let (from, to) = (source, target);
        let image = from.inspect_image(&reference).await?;
        let progress = |bytes: u64, done: bool| CopyProgress {
            image: reference.clone(),
            source: from.name().to_string(),
            target: to.name().to_string(),
            bytes,
            total_bytes: Some(image.size_bytes),
            done,
        };
        yield progress(0, false);
        let counter = Arc::new(AtomicU64::new(0));
        // The export error, if any, is the real cause; the import only sees a broken body.
        let export_error: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let (c, slot) = (counter.clone(), export_error.clone());
        let archive = from
            .export_image(&reference)
            .inspect_ok(move |b| {
                c.fetch_add(b.len() as u64, Ordering::Relaxed);
            })
            .inspect_err(move |e| {
                let mut s = slot.lock().unwrap_or_else(|p| p.into_inner());
                s.get_or_insert_with(|| e.to_string());
            })
            .boxed();
        let import = to.import_image(archive);
        futures::pin_mut!(import);
        let mut tick = tokio::time::interval(COPY_PROGRESS_INTERVAL);
        tick.tick().await;
        let mut last = 0;
        loop {
            let finished = tokio::select! {
                r = &mut import => Some(r),
                _ = tick.tick() => None,
            };
            match finished {
                Some(r) => {
                    if let Err(e) = r {
                        let cause = export_error.lock().unwrap_or_else(|p| p.into_inner()).take();
                        Err(match cause {
                            Some(message) => Error::Engine {
                                host: from.name().to_string(),
                                status: 0,
                                message: format!("export of {reference} failed: {message}"),
                            },
                            None => e,
                        })?;
                    }
                    break;
                }
                None => {
                    let now = counter.load(Ordering::Relaxed);
                    if now != last {
                        last = now;
                        yield progress(now, false);
                    }
                }
            }
        }
        tracing::debug!(image = %reference, from = %from.name(), to = %to.name(), bytes = counter.load(Ordering::Relaxed), "image copied");
        yield progress(counter.load(Ordering::Relaxed), true);
    })
}

/// Makes `reference` present on every host of `targets` that lacks it, copying from `source`.
/// Returns the names of the hosts it copied to. Copies run concurrently.
pub async fn distribute_image(
    source: Arc<dyn Host>,
    targets: &[Arc<dyn Host>],
    reference: &str,
) -> crate::Result<Vec<String>> {
    copy_to(source, targets, reference, &|_, _| {}).await
}

/// [`distribute_image`], telling `note` (host, what happened) of each copy as it ends.
pub(crate) async fn copy_to(
    source: Arc<dyn Host>,
    targets: &[Arc<dyn Host>],
    reference: &str,
    note: &(dyn Fn(&str, String) + Sync),
) -> crate::Result<Vec<String>> {
    let jobs = targets.iter().filter(|t| t.name() != source.name()).map(|t| {
        let (source, t) = (source.clone(), t.clone());
        async move {
            if t.image_exists(reference).await? {
                return Ok(None);
            }
            let mut s = copy_image(source.clone(), t.clone(), reference);
            let mut bytes = 0;
            while let Some(p) = s.try_next().await? {
                bytes = p.bytes;
            }
            note(t.name(), format!("copied {reference} from {} ({:.1} MB)", source.name(), bytes as f64 / 1e6));
            Ok::<_, Error>(Some(t.name().to_string()))
        }
    });
    let results = futures::future::join_all(jobs).await;
    let mut copied = Vec::new();
    for r in results {
        if let Some(n) = r? {
            copied.push(n);
        }
    }
    Ok(copied)
}
