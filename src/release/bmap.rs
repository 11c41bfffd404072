//! Block maps in bmaptool's format (version 2.0, sha256): which blocks of an image hold data.
//!
//! A block is mapped when it holds a non-zero byte. The map follows from the image's bytes
//! alone, not from how the file system storing the image allocated it, so the same image
//! gives the same bmap on every machine. Unmapped blocks are zeros in the image; flashing
//! leaves them as they were on the target. The image's ext4 file systems do not read them:
//! `mke2fs -d` stores zero blocks of files as holes, and free blocks are never read.

use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::Context;
use quick_xml::events::Event;
use sha2::{Digest, Sha256};

/// Block size of the maps this program writes.
pub const BLOCK_SIZE: u64 = 4096;
/// What stands in for the file's own checksum while that checksum is computed.
const CHECKSUM_PLACEHOLDER: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// A block map: the image size and its mapped ranges with their checksums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bmap {
    pub image_size: u64,
    pub block_size: u64,
    pub ranges: Vec<Range>,
}

/// Blocks `first..=last` and the sha256 of their bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub first: u64,
    pub last: u64,
    pub sha256: String,
}

impl Range {
    /// The byte offsets `start..end` this range covers in an image of `image_size` bytes.
    pub fn bytes(&self, block_size: u64, image_size: u64) -> (u64, u64) {
        let start = self.first * block_size;
        let end = ((self.last + 1) * block_size).min(image_size);
        (start, end)
    }

    /// The range as bmaptool writes it: `7` or `7-12`.
    pub fn label(&self) -> String {
        if self.first == self.last {
            self.first.to_string()
        } else {
            format!("{}-{}", self.first, self.last)
        }
    }
}

impl Bmap {
    pub fn blocks_count(&self) -> u64 {
        self.image_size.div_ceil(self.block_size)
    }

    pub fn mapped_blocks(&self) -> u64 {
        self.ranges.iter().map(|r| r.last - r.first + 1).sum()
    }

    /// The bytes the mapped ranges cover (the last block may be short).
    pub fn mapped_bytes(&self) -> u64 {
        self.ranges
            .iter()
            .map(|r| {
                let (start, end) = r.bytes(self.block_size, self.image_size);
                end - start
            })
            .sum()
    }

    /// The bmap file: no timestamps, no paths, its own checksum filled in.
    pub fn to_xml(&self) -> String {
        let mut ranges = String::new();
        for r in &self.ranges {
            ranges.push_str(&format!(
                "        <Range chksum=\"{}\"> {} </Range>\n",
                r.sha256,
                r.label()
            ));
        }
        let text = format!(
            "<?xml version=\"1.0\" ?>\n\
             <!-- Block map of a disk image, made by baseimg: the blocks holding non-zero\n     \
             bytes, with the sha256 of each range. Copy it with `bmaptool copy` or\n     \
             `baseimg flash`. -->\n\
             <bmap version=\"2.0\">\n    \
             <ImageSize> {} </ImageSize>\n    \
             <BlockSize> {} </BlockSize>\n    \
             <BlocksCount> {} </BlocksCount>\n    \
             <MappedBlocksCount> {} </MappedBlocksCount>\n    \
             <ChecksumType> sha256 </ChecksumType>\n    \
             <BmapFileChecksum> {CHECKSUM_PLACEHOLDER} </BmapFileChecksum>\n    \
             <BlockMap>\n{ranges}    </BlockMap>\n</bmap>\n",
            self.image_size,
            self.block_size,
            self.blocks_count(),
            self.mapped_blocks(),
        );
        let own = crate::fsutil::sha256_bytes(text.as_bytes());
        text.replacen(CHECKSUM_PLACEHOLDER, &own, 1)
    }
}

/// Maps the blocks of `image` that hold a non-zero byte. Only the parts the file system
/// reports as data are read; the result does not depend on where the holes are.
pub fn create(image: &Path) -> anyhow::Result<Bmap> {
    let file =
        std::fs::File::open(image).with_context(|| format!("opening `{}`", image.display()))?;
    let len = file.metadata().with_context(|| format!("reading `{}`", image.display()))?.len();
    let mut builder = Builder { ranges: Vec::new(), open: None };
    let mut block = vec![0u8; BLOCK_SIZE as usize];
    for (start, end) in crate::fsutil::data_segments(&file, len) {
        let first = start / BLOCK_SIZE;
        let last = end.div_ceil(BLOCK_SIZE);
        for index in first..last {
            let offset = index * BLOCK_SIZE;
            let want = (len - offset).min(BLOCK_SIZE) as usize;
            file.read_exact_at(&mut block[..want], offset)
                .with_context(|| format!("reading `{}` at byte {offset}", image.display()))?;
            builder.add(index, &block[..want]);
        }
    }
    builder.close();
    Ok(Bmap { image_size: len, block_size: BLOCK_SIZE, ranges: builder.ranges })
}

/// Gathers consecutive non-zero blocks into ranges, hashing them as they come.
struct Builder {
    ranges: Vec<Range>,
    open: Option<(u64, u64, Sha256)>,
}

impl Builder {
    fn add(&mut self, index: u64, bytes: &[u8]) {
        if bytes.iter().all(|&b| b == 0) {
            self.close();
            return;
        }
        match &mut self.open {
            Some((_, last, hasher)) if *last + 1 == index => {
                *last = index;
                hasher.update(bytes);
            }
            _ => {
                self.close();
                let mut hasher = Sha256::new();
                hasher.update(bytes);
                self.open = Some((index, index, hasher));
            }
        }
    }

    fn close(&mut self) {
        if let Some((first, last, hasher)) = self.open.take() {
            self.ranges.push(Range { first, last, sha256: hex::encode(hasher.finalize()) });
        }
    }
}

/// Reads a bmap file (ours or bmaptool's), checking its own checksum.
pub fn read(path: &Path) -> anyhow::Result<Bmap> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading `{}`", path.display()))?;
    parse(&text).with_context(|| format!("reading bmap `{}`", path.display()))
}

/// Parses a bmap of version 2.x with sha256 checksums.
pub fn parse(text: &str) -> anyhow::Result<Bmap> {
    let fields = Fields::parse(text)?;
    anyhow::ensure!(
        fields.version.starts_with("2."),
        "bmap version `{}` is not supported (only 2.x)",
        fields.version
    );
    let kind = fields.get("ChecksumType")?;
    anyhow::ensure!(kind == "sha256", "checksum type `{kind}` is not supported (only sha256)");
    let own = fields.get("BmapFileChecksum")?;
    let expected =
        crate::fsutil::sha256_bytes(text.replacen(own, &"0".repeat(own.len()), 1).as_bytes());
    anyhow::ensure!(
        own == expected,
        "the bmap's own checksum does not match its content (damaged or edited file)"
    );
    let mapped = number(fields.get("MappedBlocksCount")?, "MappedBlocksCount")?;
    let bmap = Bmap {
        image_size: number(fields.get("ImageSize")?, "ImageSize")?,
        block_size: number(fields.get("BlockSize")?, "BlockSize")?,
        ranges: fields.ranges,
    };
    check_consistent(&bmap, mapped)?;
    Ok(bmap)
}

fn check_consistent(bmap: &Bmap, mapped: u64) -> anyhow::Result<()> {
    anyhow::ensure!(bmap.block_size > 0, "BlockSize is 0");
    let mut next = 0;
    for r in &bmap.ranges {
        anyhow::ensure!(
            r.first >= next && r.first <= r.last && r.last < bmap.blocks_count(),
            "range {} is out of order or past the image's {} blocks",
            r.label(),
            bmap.blocks_count()
        );
        next = r.last + 1;
    }
    anyhow::ensure!(
        mapped == bmap.mapped_blocks(),
        "MappedBlocksCount says {mapped} but the ranges hold {} blocks",
        bmap.mapped_blocks()
    );
    Ok(())
}

fn number(text: &str, field: &str) -> anyhow::Result<u64> {
    text.parse().with_context(|| format!("{field} `{text}` is not a number"))
}

/// The elements of a bmap file, as text.
struct Fields {
    version: String,
    values: Vec<(String, String)>,
    ranges: Vec<Range>,
}

impl Fields {
    fn parse(text: &str) -> anyhow::Result<Self> {
        let mut reader = quick_xml::Reader::from_str(text);
        let mut out = Fields { version: String::new(), values: Vec::new(), ranges: Vec::new() };
        let mut element = String::new();
        let mut chksum = None;
        loop {
            let at = reader.buffer_position() as usize;
            let event = reader.read_event().map_err(|e| xml_error(text, at, &e))?;
            match event {
                Event::Start(e) => {
                    element = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                    chksum = None;
                    for attr in e.attributes() {
                        let attr = attr.map_err(|e| xml_error(text, at, &e))?;
                        let value = attr.unescape_value().map_err(|e| xml_error(text, at, &e))?;
                        match attr.key.as_ref() {
                            b"version" => out.version = value.into_owned(),
                            b"chksum" => chksum = Some(value.into_owned()),
                            _ => {}
                        }
                    }
                }
                Event::Text(t) => {
                    let value = t.unescape().map_err(|e| xml_error(text, at, &e))?;
                    let value = value.trim();
                    if element == "Range" {
                        let hash = chksum.take().with_context(|| {
                            format!("line {}: range `{value}` has no chksum", line_of(text, at))
                        })?;
                        out.ranges.push(range(value, hash, line_of(text, at))?);
                    } else if !value.is_empty() {
                        out.values.push((element.clone(), value.to_string()));
                    }
                }
                Event::End(_) => element.clear(),
                Event::Eof => break,
                _ => {}
            }
        }
        anyhow::ensure!(!out.version.is_empty(), "no <bmap version=...> element");
        Ok(out)
    }

    fn get(&self, name: &str) -> anyhow::Result<&str> {
        self.values
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .with_context(|| format!("the bmap has no <{name}>"))
    }
}

fn range(text: &str, sha256: String, line: usize) -> anyhow::Result<Range> {
    let bad = || format!("line {line}: range `{text}` is not `N` or `N-M`");
    let (first, last) = match text.split_once('-') {
        Some((a, b)) => (a.trim().parse().with_context(bad)?, b.trim().parse().with_context(bad)?),
        None => {
            let n = text.parse().with_context(bad)?;
            (n, n)
        }
    };
    anyhow::ensure!(
        sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit()),
        "line {line}: range `{text}` has a chksum that is not a sha256"
    );
    Ok(Range { first, last, sha256: sha256.to_ascii_lowercase() })
}

fn xml_error(text: &str, at: usize, e: &dyn std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("line {}: malformed XML: {e}", line_of(text, at))
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Hashes the mapped ranges of an image read in order from `reader` (a raw image, or the
/// decompressed stream of a compressed one) and returns the ranges whose bytes differ.
pub fn check_stream(
    bmap: &Bmap,
    reader: &mut super::compress::ImageReader,
) -> anyhow::Result<Vec<Range>> {
    let mut pos = 0;
    let mut bad = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    for r in &bmap.ranges {
        let (start, end) = r.bytes(bmap.block_size, bmap.image_size);
        reader.skip(start - pos, &mut buf).context("the image ends early")?;
        let mut hasher = Sha256::new();
        copy_range(reader, end - start, &mut buf, |chunk| hasher.update(chunk))?;
        if hex::encode(hasher.finalize()) != r.sha256 {
            bad.push(r.clone());
        }
        pos = end;
    }
    Ok(bad)
}

/// Reads exactly `count` bytes, handing them on in chunks.
pub fn copy_range(
    reader: &mut dyn std::io::Read,
    mut count: u64,
    buf: &mut [u8],
    mut sink: impl FnMut(&[u8]),
) -> anyhow::Result<()> {
    while count > 0 {
        let want = count.min(buf.len() as u64) as usize;
        reader.read_exact(&mut buf[..want]).context("the image ends early")?;
        sink(&buf[..want]);
        count -= want as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_with(blocks: &[(u64, u8)], total_blocks: u64) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        file.as_file().set_len(total_blocks * BLOCK_SIZE).expect("size");
        for (index, byte) in blocks {
            let data = vec![*byte; BLOCK_SIZE as usize];
            file.as_file().write_all_at(&data, index * BLOCK_SIZE).expect("write");
        }
        file
    }

    #[test]
    fn nonzero_blocks_form_ranges_and_written_zeros_do_not() {
        let img = image_with(&[(0, 1), (1, 2), (5, 0), (6, 3), (9, 4)], 10);
        let bmap = create(img.path()).expect("bmap");
        let labels: Vec<String> = bmap.ranges.iter().map(Range::label).collect();
        assert_eq!(labels, ["0-1", "6", "9"]);
        assert_eq!(bmap.mapped_bytes(), 4 * BLOCK_SIZE);
        let mut expected = vec![1u8; 4096];
        expected.extend(vec![2u8; 4096]);
        assert_eq!(bmap.ranges[0].sha256, crate::fsutil::sha256_bytes(&expected));
    }

    #[test]
    fn written_xml_parses_back_and_checks_itself() {
        let img = image_with(&[(2, 9), (3, 9), (7, 1)], 8);
        let bmap = create(img.path()).expect("bmap");
        let xml = bmap.to_xml();
        assert_eq!(parse(&xml).expect("parse"), bmap);
        assert!(!xml.contains(CHECKSUM_PLACEHOLDER));
        let edited = xml.replacen("> 7 <", "> 6 <", 1);
        let err = parse(&edited).unwrap_err().to_string();
        assert!(err.contains("own checksum does not match"), "{err}");
    }

    #[test]
    fn stream_check_names_the_damaged_range() {
        let img = image_with(&[(1, 5), (4, 6)], 6);
        let bmap = create(img.path()).expect("bmap");
        img.as_file().write_all_at(b"x", 4 * BLOCK_SIZE + 10).expect("damage");
        let mut reader = super::super::compress::open_image(img.path()).expect("open");
        let bad = check_stream(&bmap, &mut reader).expect("check");
        assert_eq!(bad.iter().map(Range::label).collect::<Vec<_>>(), ["4"]);
    }

    #[test]
    fn malformed_range_is_reported_with_its_line() {
        let img = image_with(&[(1, 5)], 2);
        let xml = create(img.path()).expect("bmap").to_xml().replace("> 1 <", "> x <");
        let err = parse(&xml).unwrap_err().to_string();
        assert!(err.contains("range `x` is not"), "{err}");
        assert!(err.contains("line 13:"), "{err}");
    }
}
