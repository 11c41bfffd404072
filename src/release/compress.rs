//! The compressed image: one zstd frame with fixed settings, and reading images back in
//! either form.
//!
//! zstd's multi-threaded mode cuts its input into jobs of a fixed size, whatever the number
//! of threads, so the output depends on the level, the job size and the window, never on how
//! many threads ran. The thread count only sets the speed; `BASEIMG_ZSTD_THREADS` overrides it
//! (to check that claim). Single-threaded mode (0 workers) would give other bytes, so at least
//! one worker thread is always used.

use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::Context;
use zstd::stream::raw::CParameter;

/// Compression level: level 9 makes the image 3% smaller for twice the time, level 3 5%
/// larger (figures in docs/benchmarks.md).
pub const LEVEL: i32 = 6;
/// 128 MiB window with long-distance matching: plain `zstd -d` still decompresses it.
pub const WINDOW_LOG: u32 = 27;
/// Bytes per multi-threaded job; part of the output's definition, so fixed.
pub const JOB_SIZE: u32 = 32 << 20;
/// The first bytes of every zstd frame.
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Compresses `image` into `out` with the fixed settings, returning the compressed size.
pub fn compress(image: &Path, out: &Path) -> anyhow::Result<u64> {
    compress_with(image, out, threads())
}

/// Compresses with `threads` worker threads (at least 1); the bytes do not depend on it.
pub fn compress_with(image: &Path, out: &Path, threads: u32) -> anyhow::Result<u64> {
    let input =
        std::fs::File::open(image).with_context(|| format!("opening `{}`", image.display()))?;
    let len = input.metadata().with_context(|| format!("reading `{}`", image.display()))?.len();
    let output =
        std::fs::File::create(out).with_context(|| format!("creating `{}`", out.display()))?;
    let mut encoder = encoder(std::io::BufWriter::new(output), threads.max(1), len)
        .context("setting up the zstd encoder")?;
    feed(&input, len, &mut encoder)
        .with_context(|| format!("compressing `{}` into `{}`", image.display(), out.display()))?;
    let file = encoder
        .finish()
        .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
        .with_context(|| format!("writing `{}`", out.display()))?;
    file.sync_all().with_context(|| format!("flushing `{}`", out.display()))?;
    Ok(file.metadata().with_context(|| format!("reading `{}`", out.display()))?.len())
}

fn encoder<W: Write>(
    writer: W,
    threads: u32,
    len: u64,
) -> std::io::Result<zstd::stream::write::Encoder<'static, W>> {
    let mut encoder = zstd::stream::write::Encoder::new(writer, LEVEL)?;
    encoder.multithread(threads)?;
    encoder.set_parameter(CParameter::JobSize(JOB_SIZE))?;
    encoder.long_distance_matching(true)?;
    encoder.window_log(WINDOW_LOG)?;
    encoder.include_checksum(true)?;
    encoder.include_contentsize(true)?;
    encoder.set_pledged_src_size(Some(len))?;
    Ok(encoder)
}

/// Streams the image into `writer`, holes as zeros without reading them.
fn feed(input: &std::fs::File, len: u64, writer: &mut dyn Write) -> std::io::Result<()> {
    static ZEROS: [u8; 1 << 16] = [0; 1 << 16];
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0;
    let mut segments = crate::fsutil::data_segments(input, len);
    segments.push((len, len));
    for (start, end) in segments {
        while pos < start {
            let n = (start - pos).min(ZEROS.len() as u64) as usize;
            writer.write_all(&ZEROS[..n])?;
            pos += n as u64;
        }
        while pos < end {
            let want = (end - pos).min(buf.len() as u64) as usize;
            input.read_exact_at(&mut buf[..want], pos)?;
            writer.write_all(&buf[..want])?;
            pos += want as u64;
        }
    }
    Ok(())
}

/// Worker threads for compression: `BASEIMG_ZSTD_THREADS`, else one per core.
pub fn threads() -> u32 {
    std::env::var("BASEIMG_ZSTD_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32))
        .max(1)
}

/// An image opened for reading in order, decompressed when it is zstd (told by its first
/// bytes, not its name).
pub struct ImageReader {
    source: Source,
    pub compressed: bool,
}

enum Source {
    Raw(std::io::BufReader<std::fs::File>),
    Zstd(Box<zstd::stream::read::Decoder<'static, std::io::BufReader<std::fs::File>>>),
}

impl Read for ImageReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match &mut self.source {
            Source::Raw(r) => r.read(buf),
            Source::Zstd(r) => r.read(buf),
        }
    }
}

impl ImageReader {
    /// Moves `count` bytes on: a seek in a raw image, decompressing and dropping in a
    /// compressed one.
    pub fn skip(&mut self, count: u64, buf: &mut [u8]) -> std::io::Result<()> {
        match &mut self.source {
            Source::Raw(raw) => {
                raw.seek_relative(i64::try_from(count).map_err(std::io::Error::other)?)
            }
            Source::Zstd(decoder) => {
                let mut left = count;
                while left > 0 {
                    let want = left.min(buf.len() as u64) as usize;
                    decoder.read_exact(&mut buf[..want])?;
                    left -= want as u64;
                }
                Ok(())
            }
        }
    }
}

/// Opens a raw or zstd-compressed image.
pub fn open_image(path: &Path) -> anyhow::Result<ImageReader> {
    let open =
        || std::fs::File::open(path).with_context(|| format!("opening `{}`", path.display()));
    let mut magic = [0u8; 4];
    let n = open()?.read(&mut magic).with_context(|| format!("reading `{}`", path.display()))?;
    if n == 4 && magic == ZSTD_MAGIC {
        let mut decoder = zstd::stream::read::Decoder::new(open()?)
            .with_context(|| format!("starting to decompress `{}`", path.display()))?;
        decoder.window_log_max(WINDOW_LOG)?;
        return Ok(ImageReader { source: Source::Zstd(Box::new(decoder)), compressed: true });
    }
    let raw = std::io::BufReader::with_capacity(1 << 20, open()?);
    Ok(ImageReader { source: Source::Raw(raw), compressed: false })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compressible, not trivial: text-like lines with a counter, 40 MiB (several jobs).
    fn sample_image() -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        let mut data = Vec::new();
        let mut i = 0u64;
        while data.len() < 40 << 20 {
            data.extend(
                format!("line {i} of a sample image, value {}\n", i * 7919 % 104729).bytes(),
            );
            i += 1;
        }
        file.as_file().write_all_at(&data, 1 << 20).expect("write");
        file.as_file().set_len(48 << 20).expect("size");
        file
    }

    #[test]
    fn output_is_the_same_for_any_thread_count() {
        let img = sample_image();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut hashes = Vec::new();
        for threads in [1, 2, 3] {
            let out = dir.path().join(format!("t{threads}.zst"));
            compress_with(img.path(), &out, threads).expect("compress");
            hashes.push(crate::fsutil::sha256_file(&out).expect("hash"));
        }
        assert_eq!(hashes[0], hashes[1]);
        assert_eq!(hashes[0], hashes[2]);
    }

    #[test]
    fn compressed_image_reads_back_as_the_raw_image() {
        let img = sample_image();
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("x.zst");
        compress(img.path(), &out).expect("compress");
        let mut opened = open_image(&out).expect("open");
        assert!(opened.compressed);
        let mut back = Vec::new();
        opened.read_to_end(&mut back).expect("decompress");
        assert_eq!(back, std::fs::read(img.path()).expect("read"));
    }
}
