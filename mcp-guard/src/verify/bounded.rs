//! Outbound response bodies read bounded while streaming: one reader for the key set,
//! discovery, introspection and client metadata documents. A `Content-Length` above the limit
//! is refused before any byte is read, and reading stops at the first chunk that takes the
//! body past the limit, so no more than the limit plus one chunk is ever held.

/// Why a bounded body could not be read. Never holds response bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum BodyError {
    /// The response declared (`Content-Length`) more than the limit; nothing was read.
    #[error("the response declares {declared} bytes, more than the limit of {limit} bytes")]
    Declared {
        /// The declared length.
        declared: u64,
        /// The limit.
        limit: usize,
    },
    /// The streamed body went past the limit; reading stopped there.
    #[error("the response is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The connection failed or timed out while the body was read.
    #[error("reading the response failed: {}", if *.timed_out { "timed out" } else { "connection failed" })]
    Read {
        /// Whether the request's timeout elapsed.
        timed_out: bool,
    },
}

/// Reads `resp`'s body, at most `limit` bytes. The request's own timeout bounds the time.
pub(crate) async fn read_body(
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    let mut body = Bounded::new(resp.content_length(), limit)?;
    while let Some(chunk) = resp.chunk().await.map_err(|e| BodyError::Read {
        timed_out: e.is_timeout(),
    })? {
        body.push(&chunk)?;
    }
    Ok(body.into_inner())
}

/// A body being received under a limit.
struct Bounded {
    limit: usize,
    body: Vec<u8>,
}

impl Bounded {
    /// Refuses a declared length above the limit before anything is read.
    fn new(declared: Option<u64>, limit: usize) -> Result<Self, BodyError> {
        if let Some(declared) = declared
            && declared > limit as u64
        {
            return Err(BodyError::Declared { declared, limit });
        }
        // A declared length within the limit is a fine first guess; never trusted further.
        let capacity = declared.map_or(0, |d| d as usize).min(limit);
        Ok(Self {
            limit,
            body: Vec::with_capacity(capacity),
        })
    }

    /// Takes one more chunk, or refuses it when it would pass the limit.
    fn push(&mut self, chunk: &[u8]) -> Result<(), BodyError> {
        if chunk.len() > self.limit - self.body.len() {
            return Err(BodyError::TooLarge { limit: self.limit });
        }
        self.body.extend_from_slice(chunk);
        Ok(())
    }

    fn into_inner(self) -> Vec<u8> {
        self.body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` until the reader refuses one; returns the outcome and the chunks taken.
    fn feed<'a>(
        declared: Option<u64>,
        limit: usize,
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> (Result<Vec<u8>, BodyError>, usize) {
        let mut body = match Bounded::new(declared, limit) {
            Ok(b) => b,
            Err(e) => return (Err(e), 0),
        };
        let mut taken = 0;
        for chunk in chunks {
            taken += 1;
            if let Err(e) = body.push(chunk) {
                return (Err(e), taken);
            }
        }
        (Ok(body.into_inner()), taken)
    }

    #[test]
    fn an_endless_body_stops_one_chunk_past_the_limit() {
        let chunk = [b'x'; 1000];
        let (result, taken) = feed(None, 64 * 1024, std::iter::repeat(&chunk[..]));
        assert_eq!(result, Err(BodyError::TooLarge { limit: 64 * 1024 }));
        // 65 chunks fit (65 000 bytes); the 66th would pass 65 536 and is the last one seen.
        assert_eq!(taken, 66);
    }

    #[test]
    fn a_declared_length_above_the_limit_reads_nothing() {
        let (result, taken) = feed(Some(101), 100, std::iter::repeat(&b"x"[..]));
        assert_eq!(
            result,
            Err(BodyError::Declared {
                declared: 101,
                limit: 100
            })
        );
        assert_eq!(taken, 0);
    }

    #[test]
    fn a_body_of_exactly_the_limit_is_read_whole() {
        let (body, _) = feed(Some(5), 5, [&b"abc"[..], b"de"]);
        assert_eq!(body.as_deref(), Ok(&b"abcde"[..]));
        // A declared length that lies (within the limit) lets nothing more through.
        let (body, taken) = feed(Some(2), 5, [&b"abc"[..], b"def", b"ghi"]);
        assert_eq!(body, Err(BodyError::TooLarge { limit: 5 }));
        assert_eq!(taken, 2);
        // An empty body is fine.
        assert_eq!(feed(None, 5, []).0, Ok(Vec::new()));
    }

    #[test]
    fn errors_say_what_happened() {
        assert_eq!(
            BodyError::Read { timed_out: true }.to_string(),
            "reading the response failed: timed out"
        );
        assert_eq!(
            BodyError::TooLarge { limit: 65536 }.to_string(),
            "the response is larger than the limit of 65536 bytes"
        );
    }
}
