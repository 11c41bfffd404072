//! The initramfs: concatenated newc cpio archives, each plain, gzip or zstd compressed.

use std::io::Read;

use anyhow::Context;

const NEWC: &[u8] = b"070701";
const NEWC_CRC: &[u8] = b"070702";
const HEADER: usize = 110;

/// The path of every entry in the initramfs, in archive order.
pub fn entries(bytes: &[u8]) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        if rest.starts_with(NEWC) || rest.starts_with(NEWC_CRC) {
            let used = read_archive(rest, &mut names)?;
            rest = skip_zeros(&rest[used..]);
        } else {
            let plain = decompress(rest)?;
            names.extend(entries(&plain)?);
            break;
        }
    }
    Ok(names)
}

fn skip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// Reads one cpio archive up to its trailer; returns the bytes it used.
fn read_archive(bytes: &[u8], names: &mut Vec<String>) -> anyhow::Result<usize> {
    let mut at = 0;
    loop {
        let header = bytes.get(at..at + HEADER).context("cpio header cut short")?;
        anyhow::ensure!(header.starts_with(b"07070"), "bad cpio magic at byte {at}");
        let file_size = hex_field(header, 6)?;
        let name_size = hex_field(header, 11)?;
        let name_bytes =
            bytes.get(at + HEADER..at + HEADER + name_size).context("cpio name cut short")?;
        let name = String::from_utf8_lossy(name_bytes).trim_end_matches('\0').to_string();
        at = align4(at + HEADER + name_size);
        at = align4(at + file_size);
        if name == "TRAILER!!!" {
            return Ok(at.min(bytes.len()));
        }
        names.push(name);
    }
}

fn hex_field(header: &[u8], index: usize) -> anyhow::Result<usize> {
    let start = 6 + index * 8;
    let text = std::str::from_utf8(&header[start..start + 8]).context("cpio field is not text")?;
    usize::from_str_radix(text, 16).with_context(|| format!("cpio field `{text}` is not hex"))
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Decompresses the rest of an initramfs by its magic number.
fn decompress(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .context("decompressing the gzip part of the initramfs")?;
    } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd::stream::read::Decoder::new(bytes)
            .context("opening the zstd part of the initramfs")?
            .read_to_end(&mut out)
            .context("decompressing the zstd part of the initramfs")?;
    } else {
        let magic: Vec<String> = bytes.iter().take(6).map(|b| format!("{b:02x}")).collect();
        anyhow::bail!("initramfs part with unknown compression (magic {})", magic.join(" "));
    }
    Ok(out)
}

/// Builds a newc archive of the given (name, data) pairs; used by tests and fixtures.
pub fn write_newc(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let trailer: (&str, &[u8]) = ("TRAILER!!!", b"");
    for (ino, (name, data)) in files.iter().chain(std::iter::once(&trailer)).enumerate() {
        let mode = if name.ends_with('/') { 0o040755 } else { 0o100644 };
        let fields = [ino, mode, 0, 0, 1, 0, data.len(), 0, 0, 0, 0, name.len() + 1, 0];
        out.extend_from_slice(NEWC);
        for f in fields {
            out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.resize(align4(out.len()), 0);
        out.extend_from_slice(data);
        out.resize(align4(out.len()), 0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_then_zstd_archives_are_both_read() {
        let early = write_newc(&[("kernel/x86/microcode/a.bin", b"mc")]);
        let main = write_newc(&[("usr/lib/modules/6.1/kernel/usbhid.ko", b"x")]);
        let mut image = early;
        image.extend(zstd::encode_all(main.as_slice(), 1).expect("compresses"));
        let names = entries(&image).expect("reads");
        assert_eq!(
            names,
            vec!["kernel/x86/microcode/a.bin", "usr/lib/modules/6.1/kernel/usbhid.ko"]
        );
    }
}
