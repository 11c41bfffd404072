//! The SBOM: an SPDX 2.3 JSON document of the image's installed Debian packages, read from
//! the root filesystem's dpkg status, with the licenses Debian's copyright files state.
//!
//! Deterministic: the creation time is the profile's epoch, the namespace is derived from
//! the content, and packages, relationships and license references are sorted.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

use anyhow::Context;
use serde_json::json;

use super::deb822;
use super::license;
use crate::build::base::InstalledPackage;

const STATUS: &str = "var/lib/dpkg/status";

/// What the SBOM describes: the image and where its packages came from.
pub struct SbomInput<'a> {
    pub image_name: &'a str,
    pub image_file: &'a str,
    pub image_sha256: &'a str,
    pub epoch: u64,
    /// The build's record of packages, for the `.deb` hashes.
    pub packages: &'a [InstalledPackage],
}

/// Reads the dpkg status and copyright files from the rootfs tarball and returns the
/// SPDX JSON document.
pub fn write(rootfs_tar: &Path, input: &SbomInput) -> anyhow::Result<Vec<u8>> {
    let files = read_tar(rootfs_tar)
        .with_context(|| format!("reading package data from `{}`", rootfs_tar.display()))?;
    let status =
        files.status.with_context(|| format!("`{}` has no /{STATUS}", rootfs_tar.display()))?;
    let packages = installed(&status);
    anyhow::ensure!(!packages.is_empty(), "/{STATUS} lists no installed package");
    let doc = document(&packages, &files.copyrights, input);
    let mut bytes = serde_json::to_vec_pretty(&doc).context("encoding the SBOM")?;
    bytes.push(b'\n');
    Ok(bytes)
}

struct TarFiles {
    status: Option<String>,
    /// Copyright text by the folder name under /usr/share/doc, symlinked folders resolved.
    copyrights: BTreeMap<String, String>,
}

fn read_tar(path: &Path) -> anyhow::Result<TarFiles> {
    let file =
        std::fs::File::open(path).with_context(|| format!("opening `{}`", path.display()))?;
    let mut archive = tar::Archive::new(std::io::BufReader::with_capacity(1 << 20, file));
    let mut out = TarFiles { status: None, copyrights: BTreeMap::new() };
    let mut links = BTreeMap::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().trim_start_matches("./").to_string();
        if path == STATUS {
            out.status = Some(read_text(&mut entry)?);
        } else if let Some(rest) = path.strip_prefix("usr/share/doc/") {
            if let Some(pkg) = rest.strip_suffix("/copyright").filter(|p| !p.contains('/')) {
                out.copyrights.insert(pkg.to_string(), read_text(&mut entry)?);
            } else if !rest.contains('/') && entry.header().entry_type().is_symlink() {
                if let Some(target) = entry.link_name()? {
                    links.insert(rest.to_string(), target.to_string_lossy().into_owned());
                }
            }
        }
    }
    for (pkg, target) in links {
        if let Some(text) = out.copyrights.get(target.trim_end_matches('/')).cloned() {
            out.copyrights.entry(pkg).or_insert(text);
        }
    }
    Ok(out)
}

fn read_text(entry: &mut dyn Read) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// One installed package as dpkg records it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Package {
    pub name: String,
    pub architecture: String,
    pub version: String,
    pub source: Option<String>,
    pub maintainer: Option<String>,
    pub homepage: Option<String>,
    pub summary: Option<String>,
}

/// The packages dpkg's status file lists as installed, sorted by name and architecture.
pub fn installed(status: &str) -> Vec<Package> {
    let mut out: Vec<Package> = deb822::paragraphs(status)
        .into_iter()
        .filter(|p| p.get("Status").is_some_and(|s| s.ends_with(" installed")))
        .filter_map(|p| {
            Some(Package {
                name: p.get("Package")?.to_string(),
                architecture: p.get("Architecture")?.to_string(),
                version: p.get("Version")?.to_string(),
                source: p.get("Source").map(str::to_string),
                maintainer: p.get("Maintainer").map(str::to_string),
                homepage: p.get("Homepage").map(str::to_string),
                summary: p.get("Description").map(|d| d.lines().next().unwrap_or("").to_string()),
            })
        })
        .collect();
    out.sort();
    out
}

fn document(
    packages: &[Package],
    copyrights: &BTreeMap<String, String>,
    input: &SbomInput,
) -> serde_json::Value {
    let debs: BTreeMap<(&str, &str), &str> = input
        .packages
        .iter()
        .filter_map(|p| Some(((p.name.as_str(), p.version.as_str()), p.deb_sha256.as_deref()?)))
        .collect();
    let mut refs = BTreeSet::new();
    let mut entries = vec![image_entry(input)];
    let mut relationships = vec![relationship("SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Image")];
    for p in packages {
        let declared = copyrights.get(&p.name).map(|text| license::declared(text));
        let declared = declared.flatten();
        if let Some(expr) = &declared {
            refs.extend(expr.refs.iter().cloned());
        }
        let deb = debs.get(&(p.name.as_str(), p.version.as_str())).copied();
        let entry = package_entry(p, declared.as_ref().map(|d| d.expression.as_str()), deb);
        relationships.push(relationship("SPDXRef-Image", "CONTAINS", &spdx_id(p)));
        entries.push(entry);
    }
    let extracted: Vec<serde_json::Value> =
        refs.iter().map(|r| license::extracted_info(r)).collect();
    let namespace = namespace(input, &entries);
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{} disk image", input.image_name),
        "documentNamespace": namespace,
        "creationInfo": {
            "created": rfc3339(input.epoch),
            "creators": [format!("Tool: baseimg-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": entries,
        "relationships": relationships,
        "hasExtractedLicensingInfos": extracted,
    })
}

fn image_entry(input: &SbomInput) -> serde_json::Value {
    json!({
        "SPDXID": "SPDXRef-Image",
        "name": input.image_name,
        "packageFileName": input.image_file,
        "primaryPackagePurpose": "OPERATING-SYSTEM",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "checksums": [{ "algorithm": "SHA256", "checksumValue": input.image_sha256 }],
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
    })
}

fn package_entry(
    p: &Package,
    license: Option<&str>,
    deb_sha256: Option<&str>,
) -> serde_json::Value {
    let mut entry = json!({
        "SPDXID": spdx_id(p),
        "name": p.name,
        "versionInfo": p.version,
        "supplier": p.maintainer.as_ref().map_or("NOASSERTION".to_string(), |m| format!("Organization: {m}")),
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": license.unwrap_or("NOASSERTION"),
        "copyrightText": "NOASSERTION",
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": purl(p),
        }],
    });
    let fields = entry.as_object_mut().expect("a JSON object");
    if let Some(summary) = &p.summary {
        fields.insert("summary".into(), json!(summary));
    }
    if let Some(home) = &p.homepage {
        fields.insert("homepage".into(), json!(home));
    }
    if let Some(source) = &p.source {
        fields.insert(
            "sourceInfo".into(),
            json!(format!("built from Debian source package {source}")),
        );
    }
    if let Some(sha) = deb_sha256 {
        fields.insert(
            "packageFileName".into(),
            json!(format!("{}_{}_{}.deb", p.name, p.version.replace(':', "%3a"), p.architecture)),
        );
        fields.insert("checksums".into(), json!([{ "algorithm": "SHA256", "checksumValue": sha }]));
    }
    entry
}

/// An SPDX element id: letters, digits, `.` and `-` only.
fn spdx_id(p: &Package) -> String {
    let clean = |s: &str| {
        s.replace('+', "plus")
            .replace(|c: char| !c.is_ascii_alphanumeric() && c != '.' && c != '-', "-")
    };
    format!("SPDXRef-deb-{}-{}", clean(&p.name), clean(&p.architecture))
}

/// The package URL of a Debian package.
fn purl(p: &Package) -> String {
    let version: String = p
        .version
        .chars()
        .map(|c| match c {
            ':' => "%3A".to_string(),
            '+' => "%2B".to_string(),
            '~' => "%7E".to_string(),
            c => c.to_string(),
        })
        .collect();
    format!("pkg:deb/debian/{}@{version}?arch={}", p.name, p.architecture)
}

fn relationship(from: &str, kind: &str, to: &str) -> serde_json::Value {
    json!({ "spdxElementId": from, "relationshipType": kind, "relatedSpdxElement": to })
}

/// A namespace URI that names this content: the same packages in the same image give the
/// same URI, any change gives another.
fn namespace(input: &SbomInput, entries: &[serde_json::Value]) -> String {
    let content = serde_json::to_vec(entries).unwrap_or_default();
    let seed = format!("{}:{}", input.image_name, crate::fsutil::sha256_bytes(&content));
    let id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, seed.as_bytes());
    format!("https://spdx.org/spdxdocs/baseimg-{}-{id}", input.image_name)
}

/// Seconds since 1970 as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(epoch: u64) -> String {
    let days = (epoch / 86400) as i64;
    let secs = epoch % 86400;
    // Civil date from a day count (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS_TEXT: &str =
        "Package: zlib1g\nStatus: install ok installed\nArchitecture: arm64\n\
        Source: zlib\nVersion: 1:1.2.13.dfsg-1\nDescription: compression library\n more text\n\n\
        Package: gone\nStatus: deinstall ok config-files\nArchitecture: arm64\nVersion: 1\n\n\
        Package: bash\nStatus: install ok installed\nArchitecture: arm64\nVersion: 5.2.15-2+b7\n";

    #[test]
    fn only_installed_packages_are_listed_sorted() {
        let pkgs = installed(STATUS_TEXT);
        let names: Vec<&str> = pkgs.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["bash", "zlib1g"]);
        assert_eq!(pkgs[1].source.as_deref(), Some("zlib"));
        assert_eq!(pkgs[1].summary.as_deref(), Some("compression library"));
        assert_eq!(purl(&pkgs[1]), "pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1?arch=arm64");
    }

    #[test]
    fn epoch_becomes_utc_time() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_764_547_200), "2025-12-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400 + 3661), "2000-02-29T01:01:01Z");
    }

    #[test]
    fn document_is_deterministic_and_carries_licenses() {
        let pkgs = installed(STATUS_TEXT);
        let mut copyrights = BTreeMap::new();
        copyrights.insert(
            "bash".to_string(),
            "Format: x\n\nFiles: *\nCopyright: FSF\nLicense: GPL-3+\n\nFiles: a\nLicense: public-domain\n"
                .to_string(),
        );
        let input = SbomInput {
            image_name: "t",
            image_file: "t.img",
            image_sha256: "ab",
            epoch: 0,
            packages: &[],
        };
        let one = document(&pkgs, &copyrights, &input);
        assert_eq!(one, document(&pkgs, &copyrights, &input));
        let bash = &one["packages"][1];
        assert_eq!(bash["licenseDeclared"], "GPL-3.0-or-later AND LicenseRef-Debian-public-domain");
        assert_eq!(
            one["hasExtractedLicensingInfos"][0]["licenseId"],
            "LicenseRef-Debian-public-domain"
        );
        assert_eq!(one["packages"][2]["licenseDeclared"], "NOASSERTION");
    }
}
