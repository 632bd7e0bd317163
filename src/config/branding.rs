//! `[branding]`, validated: the product name, logo, accent colour and the support and
//! privacy links every page shows.
//!
//! - The logo is an inline image (`data:image/…;base64,…`, at most [`MAX_LOGO_BYTES`]),
//!   never a remote URL: the pages' CSP admits images from the broker and `data:` only,
//!   and a remote logo would tell its host of every page a user opens.
//! - The accent colour must stay readable (WCAG 2 AA, 4.5:1): as white text on a button of
//!   that colour and as link text on the light page. A colour that fails is refused, not
//!   quietly changed. Dark mode needs a light accent, so its twin is derived: the colour
//!   mixed with white until it reaches 4.5:1 on the dark page (and dark text on it does).
//! - Support and privacy links are https (http only on loopback or with `--dev`).
//! - The time zone is an IANA name, looked up in the database built into the binary.

use base64::Engine;
use url::Url;

use super::BrandingConfig;
use super::problems::{Problems, is_loopback};

/// The name pages show when `branding.product_name` is not set.
pub const DEFAULT_PRODUCT_NAME: &str = "consent-broker";
/// Largest accepted `branding.logo_url`, in bytes of the whole `data:` URL.
pub const MAX_LOGO_BYTES: usize = 32 * 1024;
/// Longest `branding.product_name`, in characters.
const MAX_NAME_CHARS: usize = 40;
/// WCAG 2 AA for normal text.
const AA: f64 = 4.5;

/// The image types a logo may be.
const LOGO_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/webp", "image/svg+xml"];

/// The palette the accent must read against (static/app.css).
const LIGHT_PAGE: Rgb = Rgb([0xf6, 0xf8, 0xfa]);
const WHITE: Rgb = Rgb([0xff, 0xff, 0xff]);
const DARK_PAGE: Rgb = Rgb([0x0d, 0x11, 0x17]);
const DARK_SURFACE: Rgb = Rgb([0x16, 0x1b, 0x22]);
const BLACK: Rgb = Rgb([0, 0, 0]);

#[derive(Debug, Clone)]
pub struct Branding {
    pub product_name: String,
    /// A validated `data:` URL.
    pub logo: Option<String>,
    pub accent: Option<Accent>,
    pub support_url: Option<Url>,
    pub privacy_url: Option<Url>,
    /// Where the pages' times are shown (UTC beside them); UTC by default.
    pub time_zone: jiff::tz::TimeZone,
}

impl Default for Branding {
    fn default() -> Self {
        Self {
            product_name: DEFAULT_PRODUCT_NAME.to_owned(),
            logo: None,
            accent: None,
            support_url: None,
            privacy_url: None,
            time_zone: jiff::tz::TimeZone::UTC,
        }
    }
}

/// The accent in both colour schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accent {
    /// As configured: white text on it, links in it on the light page.
    pub light: Rgb,
    /// Derived: dark text on it, links in it on the dark page.
    pub dark: Rgb,
}

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub [u8; 3]);

impl Rgb {
    /// `#rrggbb`, nothing else.
    pub fn parse(text: &str) -> Option<Rgb> {
        let hex = text
            .strip_prefix('#')
            .filter(|h| h.len() == 6 && h.chars().all(|c| c.is_ascii_hexdigit()))?;
        let byte = |i: usize| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok();
        Some(Rgb([byte(0)?, byte(2)?, byte(4)?]))
    }

    pub fn hex(self) -> String {
        let [r, g, b] = self.0;
        format!("#{r:02x}{g:02x}{b:02x}")
    }

    /// WCAG 2 relative luminance.
    fn luminance(self) -> f64 {
        let channel = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        let [r, g, b] = self.0;
        0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
    }

    /// WCAG 2 contrast ratio, 1 to 21.
    pub fn contrast(self, other: Rgb) -> f64 {
        let (a, b) = (self.luminance(), other.luminance());
        (a.max(b) + 0.05) / (a.min(b) + 0.05)
    }

    /// `self` moved the fraction `t` (0 to 1) of the way to `to`.
    fn mix(self, to: Rgb, t: f64) -> Rgb {
        let mut out = [0u8; 3];
        for (o, (a, b)) in out.iter_mut().zip(self.0.into_iter().zip(to.0)) {
            let v = f64::from(a) + (f64::from(b) - f64::from(a)) * t;
            // In 0..=255 by construction.
            *o = v.round().clamp(0.0, 255.0) as u8;
        }
        Rgb(out)
    }
}

impl Accent {
    /// The accent for `light`, or why it is refused.
    pub fn new(light: Rgb) -> Result<Accent, String> {
        let on_page = light.contrast(LIGHT_PAGE);
        if on_page < AA {
            return Err(format!(
                "{} is too light: white text on it and links in it reach {on_page:.1}:1 on the \
                 page, and WCAG AA needs {AA}:1; choose a darker colour",
                light.hex()
            ));
        }
        let readable = |c: Rgb| c.contrast(DARK_SURFACE) >= AA && c.contrast(DARK_PAGE) >= AA;
        let dark = (0..=20)
            .map(|step| light.mix(WHITE, f64::from(step) / 20.0))
            .find(|c| readable(*c))
            .unwrap_or(WHITE);
        Ok(Accent { light, dark })
    }

    /// The stylesheet that puts the accent on every page (`/static/brand.css`), after
    /// `app.css`.
    pub fn stylesheet(&self) -> String {
        let (light, dark) = (self.light, self.dark);
        format!(
            ":root {{\n  --primary: {l};\n  --primary-hover: {lh};\n  --link: {l};\n  --focus: {l};\n  --on-primary: #ffffff;\n}}\n\
             @media (prefers-color-scheme: dark) {{\n  :root {{\n    --primary: {d};\n    --primary-hover: {dh};\n    --link: {d};\n    --focus: {d};\n    --on-primary: #0d1117;\n  }}\n}}\n",
            l = light.hex(),
            lh = light.mix(BLACK, 0.15).hex(),
            d = dark.hex(),
            dh = dark.mix(WHITE, 0.15).hex(),
        )
    }
}

/// Validates `[branding]`; every problem names its field.
pub(super) fn branding(c: &BrandingConfig, dev: bool, errors: &mut Problems) -> Branding {
    let mut out = Branding::default();
    if let Some(name) = &c.product_name {
        let name = name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            errors.push(format!(
                "branding.product_name: must be 1 to {MAX_NAME_CHARS} characters, on one line"
            ));
        } else {
            name.clone_into(&mut out.product_name);
        }
    }
    if let Some(logo) = &c.logo_url {
        match logo_problem(logo) {
            None => out.logo = Some(logo.clone()),
            Some(problem) => errors.push(format!("branding.logo_url: {problem}")),
        }
    }
    if let Some(colour) = &c.accent_colour {
        match Rgb::parse(colour).ok_or_else(|| format!("`{colour}` is not a #rrggbb colour")) {
            Ok(rgb) => match Accent::new(rgb) {
                Ok(accent) => out.accent = Some(accent),
                Err(problem) => errors.push(format!("branding.accent_colour: {problem}")),
            },
            Err(problem) => errors.push(format!("branding.accent_colour: {problem}")),
        }
    }
    for (field, url, slot) in [
        ("support_url", &c.support_url, &mut out.support_url),
        ("privacy_url", &c.privacy_url, &mut out.privacy_url),
    ] {
        if let Some(url) = url {
            let https = url.scheme() == "https";
            let local_http = url.scheme() == "http" && (dev || is_loopback(url));
            if (https || local_http) && url.username().is_empty() && url.password().is_none() {
                *slot = Some(url.clone());
            } else {
                errors.push(format!(
                    "branding.{field}: must be an https URL without credentials \
                     (http only on loopback or with --dev)"
                ));
            }
        }
    }
    if let Some(zone) = &c.time_zone {
        match jiff::tz::TimeZone::get(zone) {
            Ok(tz) => out.time_zone = tz,
            Err(_) => errors.push(format!(
                "branding.time_zone: `{zone}` is not an IANA time zone (e.g. Europe/Berlin)"
            )),
        }
    }
    out
}

/// Why `logo` is not an acceptable inline image, if it is not.
fn logo_problem(logo: &str) -> Option<String> {
    if logo.len() > MAX_LOGO_BYTES {
        return Some(format!(
            "{} bytes; at most {MAX_LOGO_BYTES} (use a smaller image)",
            logo.len()
        ));
    }
    let Some((kind, data)) = logo
        .strip_prefix("data:")
        .and_then(|rest| rest.split_once(";base64,"))
    else {
        return Some(
            "must be a data: URL (data:image/png;base64,…); a remote logo is refused: the \
             pages load nothing from elsewhere"
                .into(),
        );
    };
    if !LOGO_TYPES.contains(&kind) {
        return Some(format!(
            "image type `{kind}` is not one of {}",
            LOGO_TYPES.join(", ")
        ));
    }
    if base64::engine::general_purpose::STANDARD
        .decode(data)
        .is_err()
    {
        return Some("its base64 data does not decode".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(c: BrandingConfig) -> (Branding, Vec<String>) {
        let mut errors = Problems {
            errors: Vec::new(),
            notes: Vec::new(),
            secret_files_optional: false,
        };
        let b = branding(&c, false, &mut errors);
        (b, errors.errors)
    }

    #[test]
    fn contrast_matches_wcag() {
        assert!((BLACK.contrast(WHITE) - 21.0).abs() < 0.01);
        // GitHub's light link blue on white: 6.0:1 or so.
        let blue = Rgb::parse("#0b5fcc").unwrap();
        assert!(blue.contrast(WHITE) > 5.5 && blue.contrast(WHITE) < 6.5);
        assert_eq!(Rgb::parse("#0B5FCC"), Some(blue));
        for bad in ["0b5fcc", "#0b5fc", "#0b5fccc", "#0g5fcc", "red", "#+b5fcc"] {
            assert_eq!(Rgb::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_readable_accent_gets_a_readable_dark_twin() {
        let accent = Accent::new(Rgb::parse("#6a1b9a").unwrap()).unwrap();
        assert!(accent.light.contrast(LIGHT_PAGE) >= AA);
        assert!(accent.dark.contrast(DARK_SURFACE) >= AA);
        assert!(accent.dark.contrast(DARK_PAGE) >= AA);
        assert_ne!(accent.dark, WHITE, "mixed, not replaced");
        let css = accent.stylesheet();
        assert!(css.contains("--primary: #6a1b9a;"), "{css}");
        assert!(css.contains(&format!("--primary: {};", accent.dark.hex())));
    }

    #[test]
    fn a_light_accent_and_remote_logo_and_http_links_are_refused() {
        let (_, errors) = check(BrandingConfig {
            product_name: Some("Acme\nAccess".into()),
            logo_url: Some("https://cdn.example/logo.png".into()),
            accent_colour: Some("#ffcc00".into()),
            support_url: Some("http://help.example/".parse().unwrap()),
            privacy_url: Some("javascript:alert(1)".parse().unwrap()),
            time_zone: Some("Mars/Olympus_Mons".into()),
        });
        let all = errors.join("\n");
        for field in [
            "branding.product_name",
            "branding.logo_url: must be a data: URL",
            "branding.accent_colour: #ffcc00 is too light",
            "branding.support_url",
            "branding.privacy_url",
            "branding.time_zone: `Mars/Olympus_Mons` is not an IANA time zone",
        ] {
            assert!(all.contains(field), "{field} not in:\n{all}");
        }
    }

    #[test]
    fn a_good_branding_is_kept() {
        let (b, errors) = check(BrandingConfig {
            product_name: Some(" Acme Access ".into()),
            logo_url: Some("data:image/png;base64,iVBORw0KGgo=".into()),
            accent_colour: Some("#0b5fcc".into()),
            support_url: Some("https://help.acme.example/".parse().unwrap()),
            privacy_url: None,
            time_zone: Some("Europe/Berlin".into()),
        });
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(b.time_zone.iana_name(), Some("Europe/Berlin"));
        assert_eq!(b.product_name, "Acme Access");
        assert!(b.logo.is_some() && b.accent.is_some() && b.support_url.is_some());
        let (_, errors) = check(BrandingConfig {
            logo_url: Some("data:text/html;base64,PHNjcmlwdD4=".into()),
            ..Default::default()
        });
        assert!(errors[0].contains("image type `text/html`"), "{errors:?}");
    }
}
