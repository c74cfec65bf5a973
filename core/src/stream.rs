//! [`SharedStream`]: a stream behind a shared handle, for callers that cannot hold a `Stream` value
//! across calls themselves, such as the Python and Node bindings.

use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::Mutex;

use crate::embed::Origin;
use crate::error::{Error, Result};
use crate::host::ResultStream;

/// A [`ResultStream`] behind a cloneable handle: [`SharedStream::next`] from any task,
/// [`SharedStream::close`] to stop it early (which cancels the work behind it), and
/// [`SharedStream::follow`] to hand what is left to another consumer as a stream.
/// An error ends the stream: the next call after it returns `Ok(None)`.
pub struct SharedStream<T> {
    inner: Arc<Inner<T>>,
}

struct Inner<T> {
    /// Where the stream was opened: it belongs to that process.
    origin: Origin,
    stream: Mutex<Option<ResultStream<T>>>,
}

impl<T> Drop for Inner<T> {
    fn drop(&mut self) {
        // Dropped in a forked child, what the stream holds is its parent's: forgotten.
        self.origin.release(self.stream.get_mut().take());
    }
}

impl<T> Clone for SharedStream<T> {
    fn clone(&self) -> Self {
        SharedStream { inner: self.inner.clone() }
    }
}

impl<T: Send + 'static> SharedStream<T> {
    /// Wraps a stream.
    pub fn new(stream: ResultStream<T>) -> Self {
        let stream = Mutex::new(Some(stream));
        SharedStream { inner: Arc::new(Inner { origin: Origin::here(), stream }) }
    }

    /// The next item, `Ok(None)` at the end (or after an error or `close`). In a process forked after
    /// the stream was opened, an `invalid_argument` error: its connection and the work behind it
    /// stayed with the parent.
    pub async fn next(&self) -> Result<Option<T>> {
        if !self.inner.origin.is_here() {
            return Err(Error::invalid(
                "stream",
                "it was opened before this process was forked, and stays with the parent; open it again here",
            ));
        }
        let mut guard = self.inner.stream.lock().await;
        let item = match guard.as_mut() {
            Some(s) => s.next().await,
            None => return Ok(None),
        };
        match item {
            Some(Ok(v)) => Ok(Some(v)),
            Some(Err(e)) => {
                *guard = None;
                Err(e)
            }
            None => {
                *guard = None;
                Ok(None)
            }
        }
    }

    /// Stops the stream and drops what is behind it.
    pub async fn close(&self) {
        let stream = self.inner.stream.lock().await.take();
        self.inner.origin.release(stream);
    }

    /// The rest of the items as a stream (for example an exported image handed to an import).
    pub fn follow(&self) -> ResultStream<T> {
        let this = self.clone();
        futures::stream::unfold(this, |this| async move {
            match this.next().await {
                Ok(Some(v)) => Some((Ok(v), this)),
                Ok(None) => None,
                Err(e) => Some((Err(e), this)),
            }
        })
        .boxed()
    }
}

/// A stream of what `work` sends on its channel, driven by the stream itself (no task is spawned, so
/// dropping the stream cancels the work). An error returned by `work` ends the stream after the items
/// sent before it.
pub(crate) fn from_channel<T, F, Fut>(work: F) -> ResultStream<T>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::UnboundedSender<T>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send + 'static,
{
    enum Step<T> {
        Item(Option<T>),
        Done(Result<()>),
    }
    Box::pin(async_stream::stream! {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let work = work(tx);
        tokio::pin!(work);
        let mut running = true;
        loop {
            let step = tokio::select! {
                biased;
                item = rx.recv() => Step::Item(item),
                r = &mut work, if running => Step::Done(r),
            };
            match step {
                Step::Item(Some(item)) => yield Ok(item),
                Step::Item(None) => break,
                Step::Done(Ok(())) => running = false,
                Step::Done(Err(e)) => {
                    while let Ok(item) = rx.try_recv() {
                        yield Ok(item);
                    }
                    yield Err(e);
                    break;
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[tokio::test]
    async fn next_close_follow_and_errors_end_it() {
        let s =
            SharedStream::new(futures::stream::iter([Ok(1), Ok(2), Err(Error::Cancelled("x".into())), Ok(4)]).boxed());
        assert_eq!(s.next().await.unwrap(), Some(1));
        let rest: Vec<_> = s.follow().collect().await;
        assert_eq!(rest.len(), 2, "2, then the error; nothing after it");
        assert!(rest[1].is_err());
        assert_eq!(s.next().await.unwrap(), None);
        let t = SharedStream::new(futures::stream::iter([Ok(1)]).boxed());
        t.close().await;
        assert_eq!(t.next().await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_channel_stream_yields_what_was_sent_then_the_error() {
        let s = from_channel(|tx| async move {
            tx.send(1).unwrap();
            tx.send(2).unwrap();
            Err(Error::Cancelled("stop".into()))
        });
        let items: Vec<_> = s.collect().await;
        assert_eq!(items.len(), 3);
        assert!(matches!(items[..2], [Ok(1), Ok(2)]) && items[2].is_err());
        let ok: Vec<_> = from_channel(|tx| async move {
            tx.send(7).unwrap();
            Ok(())
        })
        .collect()
        .await;
        assert!(matches!(ok[..], [Ok(7)]));
    }
}
