//! Helpers shared by the fuzz targets in `fuzz_targets/`.

/// Lends heap values out as `&'static` for one fuzz iteration and frees them when
/// dropped.
///
/// The runtime's baked types (`Template`/`Seg`, `CtxPath`) hold `&'static` data
/// because the compiler emits them as statics. A target builds them from its input
/// at run time instead. `Box::leak` would type-check, but libFuzzer's leak check
/// reports every leaked input and a long run would grow without bound, so the arena
/// keeps each allocation and frees it on drop.
pub struct Arena {
    drops: Vec<Box<dyn FnOnce()>>,
}

impl Arena {
    /// An empty arena.
    ///
    /// # Safety
    ///
    /// The `'static` references it hands out are only valid until the arena is
    /// dropped. Keep the arena and everything built from it in one scope, drop the
    /// arena last, and never store a reference where it outlives the arena.
    #[must_use]
    pub unsafe fn new() -> Self {
        Self { drops: Vec::new() }
    }

    /// Move `value` into the arena and lend it out (see [`Arena::new`]).
    pub fn leak<T: ?Sized + 'static>(&mut self, value: Box<T>) -> &'static T {
        let ptr = Box::into_raw(value);
        self.drops.push(Box::new(move || {
            // SAFETY: `ptr` came from `Box::into_raw` above and is freed exactly
            // once, here; `Arena::new`'s contract says no borrow of it is live.
            drop(unsafe { Box::from_raw(ptr) });
        }));
        // SAFETY: valid and never mutated until the arena drops (see `Arena::new`).
        unsafe { &*ptr }
    }

    /// A copy of `text`, lent out as `&'static str`.
    pub fn str(&mut self, text: &str) -> &'static str {
        self.leak(Box::<str>::from(text))
    }

    /// `items`, lent out as a `&'static` slice.
    pub fn slice<T: 'static>(&mut self, items: Vec<T>) -> &'static [T] {
        self.leak(items.into_boxed_slice())
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        while let Some(free) = self.drops.pop() {
            free();
        }
    }
}

/// The input as lines (split on `\n`, a trailing `\r` dropped), lossily decoded as
/// UTF-8: the runtime only ever sees `&str` here (TOML text, header strings).
#[must_use]
pub fn lines(data: &[u8]) -> Vec<String> {
    data.split(|&b| b == b'\n')
        .map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            String::from_utf8_lossy(line).into_owned()
        })
        .collect()
}
