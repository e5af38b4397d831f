//! The `Item` trait an application implements, and its type-erased form.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ItemError;
use crate::model::ItemCtx;

/// What [`Item::check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check<O> {
    /// The item has work to do: run [`Item::apply`].
    Apply,
    /// Already in the goal state; nothing to do. The value is the item's output.
    Satisfied(O),
}

/// A unit of work. The value itself is the item's persisted spec: it is stored with the
/// execution (as the params of its [`ItemSpec`](crate::ItemSpec)) so that the execution can
/// be rebuilt after a restart, and it can arrive as JSON.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use tend_actors::{Item, ItemCtx, ItemError};
///
/// #[derive(Serialize, Deserialize)]
/// struct Copy { chunks: u32 }
///
/// impl Item for Copy {
///     const KIND: &'static str = "copy";
///     type Output = u32;
///     async fn apply(&self, cx: &mut ItemCtx) -> Result<u32, ItemError> {
///         let start: u32 = cx.resume_point()?.unwrap_or(0);
///         for chunk in start..self.chunks {
///             cx.cancellation_point().await?;
///             // ... copy one chunk ...
///             cx.progress(u64::from(chunk + 1), u64::from(self.chunks));
///             cx.checkpoint(&(chunk + 1)).await?;
///         }
///         Ok(self.chunks)
///     }
/// }
/// ```
pub trait Item: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The name plans use for this type, e.g. `"download"`.
    const KIND: &'static str;
    /// What a successful apply returns. It is stored (msgpack) and dependents read it with
    /// [`ItemCtx::input`].
    type Output: Serialize + DeserializeOwned + Send + 'static;

    /// Does the work. Call [`ItemCtx::cancellation_point`] where stopping is safe and
    /// [`ItemCtx::checkpoint`] to save progress that a later attempt resumes from.
    fn apply(
        &self,
        cx: &mut ItemCtx,
    ) -> impl Future<Output = Result<Self::Output, ItemError>> + Send;

    /// Runs before `apply`. Return [`Check::Satisfied`] when the goal state already holds;
    /// `apply` is then skipped and the item is done with the given output and
    /// `changed: false` (so it sends no refresh along its `notify` edges). An item with a
    /// pending refresh ([`ItemCtx::refresh`]) usually returns [`Check::Apply`].
    fn check(
        &self,
        cx: &mut ItemCtx,
    ) -> impl Future<Output = Result<Check<Self::Output>, ItemError>> + Send {
        let _ = cx;
        async { Ok(Check::Apply) }
    }
}

/// What a successful attempt returns: the encoded output, and whether `apply` ran (false
/// when `check` found the goal state already held).
#[derive(Debug)]
pub(crate) struct Applied {
    pub(crate) output: Arc<[u8]>,
    pub(crate) changed: bool,
}

/// A boxed attempt: what it applied, or the error.
pub(crate) type AttemptFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Applied, ItemError>> + Send + 'a>>;

/// A boxed check: the encoded output when the goal state holds, `None` when `apply` would
/// run.
pub(crate) type CheckFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Vec<u8>>, ItemError>> + Send + 'a>>;

/// The most bytes the encoding buffer of a thread keeps between outputs; a larger output
/// leaves it to be freed.
const SCRATCH_KEPT: usize = 64 << 10;

thread_local! {
    /// Where outputs are encoded before they are copied into their shared buffer, so an
    /// output costs one allocation (the shared buffer) and not two.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The encoding of `()` and `None` (msgpack nil), shared: an item that outputs nothing
/// allocates no output.
static NIL: std::sync::LazyLock<Arc<[u8]>> = std::sync::LazyLock::new(|| Arc::from(&[0xc0u8][..]));

/// `output` as msgpack (named fields), in a buffer of its own length, shared.
fn encode_output<T: Serialize>(output: &T) -> Result<Arc<[u8]>, rmp_serde::encode::Error> {
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            let encoded = rmp_serde::encode::write_named(&mut *buf, output).map(|()| {
                if buf[..] == NIL[..] {
                    NIL.clone()
                } else {
                    Arc::from(&buf[..])
                }
            });
            if buf.capacity() > SCRATCH_KEPT {
                *buf = Vec::new();
            }
            encoded
        }
        // (Only if encoding an output encoded another on the same thread: a buffer of its
        // own then.)
        Err(_) => rmp_serde::to_vec_named(output).map(Arc::from),
    })
}

/// An [`Item`] with its type erased, as the registry hands it to the runtime.
pub(crate) trait DynItem: Send + Sync {
    /// Runs check, then apply when needed, and encodes the output as msgpack.
    fn run<'a>(&'a self, cx: &'a mut ItemCtx) -> AttemptFuture<'a>;

    /// Runs only check (a dry run).
    fn check_only<'a>(&'a self, cx: &'a mut ItemCtx) -> CheckFuture<'a>;
}

impl<T: Item> DynItem for T {
    fn run<'a>(&'a self, cx: &'a mut ItemCtx) -> AttemptFuture<'a> {
        Box::pin(async move {
            let (output, changed) = match self.check(cx).await? {
                Check::Satisfied(output) => (output, false),
                Check::Apply => {
                    // From here on the world may change, whatever the attempt's end.
                    cx.mark_applying();
                    (self.apply(cx).await?, true)
                }
            };
            let output = encode_output(&output)
                .map_err(|e| ItemError::Failed(format!("cannot encode output: {e}")))?;
            Ok(Applied { output, changed })
        })
    }

    fn check_only<'a>(&'a self, cx: &'a mut ItemCtx) -> CheckFuture<'a> {
        Box::pin(async move {
            match self.check(cx).await? {
                Check::Apply => Ok(None),
                Check::Satisfied(output) => rmp_serde::to_vec_named(&output)
                    .map(Some)
                    .map_err(|e| ItemError::Failed(format!("cannot encode output: {e}"))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{NIL, SCRATCH, SCRATCH_KEPT, encode_output};

    #[test]
    fn outputs_encode_as_msgpack_and_nothing_is_shared_but_nil() {
        let unit = encode_output(&()).expect("encodes");
        let none = encode_output(&None::<u32>).expect("encodes");
        assert!(Arc::ptr_eq(&unit, &NIL) && Arc::ptr_eq(&none, &NIL));
        let first = encode_output(&("a", 1u8)).expect("encodes");
        let second = encode_output(&("b", 2u8)).expect("encodes");
        // Each output its own buffer, not a view of the scratch it was encoded in.
        assert_eq!(
            rmp_serde::from_slice::<(String, u8)>(&first).expect("decodes"),
            ("a".into(), 1)
        );
        assert_eq!(
            rmp_serde::from_slice::<(String, u8)>(&second).expect("decodes"),
            ("b".into(), 2)
        );
    }

    #[test]
    fn a_large_output_does_not_stay_in_the_scratch_buffer() {
        let large = vec![7u8; SCRATCH_KEPT + 1];
        let encoded = encode_output(&serde_bytes::Bytes::new(&large)).expect("encodes");
        assert!(encoded.len() > SCRATCH_KEPT);
        SCRATCH.with(|scratch| assert!(scratch.borrow().capacity() <= SCRATCH_KEPT));
        let small = encode_output(&1u8).expect("encodes");
        assert_eq!(&small[..], &[1u8][..]);
        SCRATCH.with(|scratch| assert!(scratch.borrow().capacity() <= SCRATCH_KEPT));
    }
}
