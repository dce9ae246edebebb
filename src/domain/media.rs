//! Product and variant images: what an upload must be before it is kept.
//!
//! An upload is never trusted. Its bytes are sniffed (the declared content
//! type must agree with what they are), decoded under size limits, and
//! **re-encoded** in their own format, so what is stored and served is an
//! image this crate wrote: no metadata (camera, GPS), no trailing payload,
//! no polyglot file. The stored name is a [`MediaKey`] the engine makes
//! (a random id and the format's extension), never a name from the upload.
//!
//! Limits: [`MAX_UPLOAD_BYTES`] per upload, [`MAX_IMAGE_SIDE`] pixels per
//! side, [`MAX_IMAGE_PIXELS`] pixels in all.

use std::fmt;
use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The largest upload accepted, in bytes (10 MiB).
pub const MAX_UPLOAD_BYTES: usize = 10 * 1024 * 1024;
/// The widest or tallest image accepted, in pixels.
pub const MAX_IMAGE_SIDE: u32 = 8_000;
/// The most pixels an image may have (width times height).
pub const MAX_IMAGE_PIXELS: u64 = 40_000_000;
/// The most bytes decoding one image may allocate.
const MAX_DECODE_BYTES: u64 = 512 * 1024 * 1024;

/// The image formats accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ImageFormat {
    /// PNG.
    Png,
    /// JPEG.
    Jpeg,
    /// WebP (re-encoded losslessly).
    Webp,
}

impl ImageFormat {
    /// Every accepted format.
    pub const ALL: [ImageFormat; 3] = [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Webp];

    /// The format's MIME type.
    pub fn content_type(self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Webp => "image/webp",
        }
    }

    /// The extension stored names end with.
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Webp => "webp",
        }
    }

    fn from_extension(ext: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.extension() == ext)
    }

    fn from_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "image/png" => Some(ImageFormat::Png),
            "image/jpeg" | "image/jpg" | "image/pjpeg" => Some(ImageFormat::Jpeg),
            "image/webp" => Some(ImageFormat::Webp),
            _ => None,
        }
    }

    fn of(format: image::ImageFormat) -> Option<Self> {
        match format {
            image::ImageFormat::Png => Some(ImageFormat::Png),
            image::ImageFormat::Jpeg => Some(ImageFormat::Jpeg),
            image::ImageFormat::WebP => Some(ImageFormat::Webp),
            _ => None,
        }
    }
}

/// The name an image is stored and served under: 32 hex digits and the
/// format's extension (`3f2a….png`). Made by [`MediaKey::new`]; one read
/// back from a URL is checked by [`MediaKey::parse`], so a key can never
/// hold a path separator, a dot-dot or anything else from outside.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MediaKey {
    id: uuid::Uuid,
    format: ImageFormat,
}

impl MediaKey {
    /// A fresh random key for an image of `format`.
    pub fn new(format: ImageFormat) -> Self {
        Self {
            id: uuid::Uuid::new_v4(),
            format,
        }
    }

    /// Reads a key back (from a URL path, a stored image).
    ///
    /// # Errors
    /// [`Error::Invalid`] (`media key`) for anything that is not 32
    /// lowercase hex digits, a dot and an accepted extension.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || Error::invalid("media key", format!("{text:?} is not a media key"));
        let (id, ext) = text.split_once('.').ok_or_else(bad)?;
        if id.len() != 32
            || !id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad());
        }
        let id = uuid::Uuid::try_parse(id).map_err(|_| bad())?;
        let format = ImageFormat::from_extension(ext).ok_or_else(bad)?;
        Ok(Self { id, format })
    }

    /// The image's format.
    pub fn format(&self) -> ImageFormat {
        self.format
    }

    /// The MIME type to serve it with.
    pub fn content_type(&self) -> &'static str {
        self.format.content_type()
    }
}

impl fmt::Display for MediaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.id.simple(), self.format.extension())
    }
}

impl TryFrom<String> for MediaKey {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::parse(&value)
    }
}

impl From<MediaKey> for String {
    fn from(key: MediaKey) -> Self {
        key.to_string()
    }
}

/// An upload that passed every check, re-encoded and ready to store.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckedImage {
    /// Its format (the one it was uploaded in).
    pub format: ImageFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The re-encoded bytes.
    pub bytes: Vec<u8>,
}

impl fmt::Debug for CheckedImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckedImage")
            .field("format", &self.format)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// Checks an upload and re-encodes it: the size, the declared content type
/// (when one is given) against what the bytes are, decoding under the
/// limits, then a fresh encoding in the same format. CPU-heavy: the engine
/// runs it off the async threads.
///
/// # Errors
/// [`Error::LimitExceeded`] (`image upload bytes`, `image side`,
/// `image pixels`) for an upload over a limit; [`Error::Invalid`]
/// (`image`) for bytes that are not an accepted image, a content type that
/// is not one or disagrees with the bytes, or an image that does not
/// decode.
pub fn check_image(bytes: &[u8], declared: Option<&str>) -> Result<CheckedImage> {
    if bytes.len() > MAX_UPLOAD_BYTES {
        return Err(Error::LimitExceeded {
            what: "image upload bytes",
            max: MAX_UPLOAD_BYTES as u64,
        });
    }
    let sniffed = image::guess_format(bytes)
        .ok()
        .and_then(ImageFormat::of)
        .ok_or_else(|| Error::invalid("image", "the file is not a PNG, JPEG or WebP image"))?;
    if let Some(declared) = declared {
        let claimed = ImageFormat::from_content_type(declared).ok_or_else(|| {
            Error::invalid(
                "image",
                format!("content type {declared:?} is not an accepted image type"),
            )
        })?;
        if claimed != sniffed {
            return Err(Error::invalid(
                "image",
                format!(
                    "the file says {declared:?} but is {}",
                    sniffed.content_type()
                ),
            ));
        }
    }
    let format = match sniffed {
        ImageFormat::Png => image::ImageFormat::Png,
        ImageFormat::Jpeg => image::ImageFormat::Jpeg,
        ImageFormat::Webp => image::ImageFormat::WebP,
    };
    let (width, height) = image::ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|_| Error::invalid("image", "the image's header does not decode"))?;
    check_dimensions(width, height)?;
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let decoded = reader
        .decode()
        .map_err(|_| Error::invalid("image", "the image does not decode"))?;
    let mut out = Cursor::new(Vec::new());
    let encoded = match sniffed {
        ImageFormat::Png => {
            decoded.write_with_encoder(image::codecs::png::PngEncoder::new(&mut out))
        }
        ImageFormat::Jpeg => {
            // JPEG has no alpha channel: flatten what the decoder gave.
            image::DynamicImage::ImageRgb8(decoded.to_rgb8()).write_with_encoder(
                image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90),
            )
        }
        ImageFormat::Webp => {
            let rgba = image::DynamicImage::ImageRgba8(decoded.to_rgba8());
            rgba.write_with_encoder(image::codecs::webp::WebPEncoder::new_lossless(&mut out))
        }
    };
    encoded.map_err(|_| Error::invalid("image", "the image could not be re-encoded"))?;
    Ok(CheckedImage {
        format: sniffed,
        width,
        height,
        bytes: out.into_inner(),
    })
}

fn check_dimensions(width: u32, height: u32) -> Result<()> {
    if width == 0 || height == 0 {
        return Err(Error::invalid("image", "the image has no pixels"));
    }
    if width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE {
        return Err(Error::LimitExceeded {
            what: "image side",
            max: u64::from(MAX_IMAGE_SIDE),
        });
    }
    if u64::from(width) * u64::from(height) > MAX_IMAGE_PIXELS {
        return Err(Error::LimitExceeded {
            what: "image pixels",
            max: MAX_IMAGE_PIXELS,
        });
    }
    Ok(())
}

/// A stored image, as read back to be served.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MediaObject {
    /// Its MIME type.
    pub content_type: &'static str,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

impl MediaObject {
    /// An object of `content_type` holding `bytes`.
    pub fn new(content_type: &'static str, bytes: Vec<u8>) -> Self {
        Self {
            content_type,
            bytes,
        }
    }

    /// A strong entity tag for the bytes (a SHA-256 prefix, quoted), for
    /// `ETag` and `If-None-Match`.
    pub fn etag(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(&self.bytes);
        format!("\"{}\"", hex::encode(digest.get(..16).unwrap_or_default()))
    }
}

impl fmt::Debug for MediaObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MediaObject")
            .field("content_type", &self.content_type)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// The `Cache-Control` value media are served with: a key names one
/// image's bytes forever (a new upload gets a new key), so caches may keep
/// it a year.
pub const CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_refuse_paths() {
        let key = MediaKey::new(ImageFormat::Png);
        assert_eq!(MediaKey::parse(&key.to_string()).ok(), Some(key));
        for bad in [
            "../etc/passwd",
            "a.png",
            "0123456789abcdef0123456789abcdef.exe",
            "0123456789abcdef0123456789abcdef/x.png",
            "0123456789ABCDEF0123456789abcdef.png",
            "",
        ] {
            assert!(MediaKey::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn not_an_image_is_refused() {
        assert!(matches!(
            check_image(b"#!/bin/sh\nrm -rf /", None),
            Err(Error::Invalid { field: "image", .. })
        ));
    }
}
