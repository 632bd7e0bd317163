//! Deutsch.

use super::{Catalogue, Html, esc};
use crate::domain::{GrantStatus, ProviderKind};

pub struct De;

impl Catalogue for De {
    fn skip_link(&self) -> &'static str {
        "Zum Inhalt springen"
    }
    fn dev_banner_title(&self) -> &'static str {
        "Entwicklungsmodus"
    }
    fn dev_banner(&self) -> &'static str {
        "— die Anmeldung wird nicht geprüft. Nicht mit echten Zugangsdaten verwenden."
    }
    fn nav_connections(&self) -> &'static str {
        "Ihre Verbindungen"
    }
    fn nav_connections_short(&self) -> &'static str {
        "Verbindungen"
    }
    fn signed_in_as(&self) -> &'static str {
        "Angemeldet als"
    }
    fn sign_out(&self) -> &'static str {
        "Abmelden"
    }
    fn footer(&self, product: &str) -> String {
        format!("{product} · Bestätigen Sie nur Anfragen, die Sie selbst ausgelöst haben.")
    }
    fn support(&self) -> &'static str {
        "Hilfe und Support"
    }
    fn privacy(&self) -> &'static str {
        "Datenschutzhinweis"
    }
    fn language(&self) -> &'static str {
        "Sprache"
    }

    fn sign_in(&self) -> &'static str {
        "Anmelden"
    }
    fn request_waiting(&self) -> &'static str {
        "Eine Verbindungsanfrage wartet auf Sie. Melden Sie sich als die Person an, für die sie gestellt wurde, um sie zu sehen; nach der Anmeldung kommen Sie zu ihr zurück."
    }
    fn sso_intro(&self) -> &'static str {
        "Melden Sie sich mit dem Konto Ihrer Organisation an, um fortzufahren."
    }
    fn continue_with(&self, sso: &str) -> String {
        format!("Weiter mit {sso}")
    }
    fn dev_sign_in(&self) -> &'static str {
        "Entwicklungs-Anmeldung"
    }
    fn dev_sign_in_warning(&self) -> &'static str {
        "Dieser Broker läuft mit der Entwicklungs-Anmeldung. Jeder Benutzername wird ohne Passwort angenommen; sie darf daher nicht mit echten Konten oder Zugangsdaten verwendet werden."
    }
    fn user_name(&self) -> &'static str {
        "Benutzername"
    }
    fn dev_admin(&self) -> &'static str {
        "Als Administrator anmelden (öffnet die Admin-Konsole; nur zur Entwicklung)"
    }
    fn no_sign_in(&self) -> &'static str {
        "Auf diesem Broker ist keine Anmeldung eingerichtet."
    }
    fn no_sign_in_hint(&self) -> &'static str {
        "Bitten Sie Ihre Administration, eine Anmeldemethode einzurichten, und öffnen Sie dann den Link Ihres Assistenten erneut."
    }

    fn bad_user_name(&self) -> &'static str {
        "Geben Sie einen Benutzernamen ein (bis zu 255 Zeichen, keine Steuerzeichen)."
    }
    fn continuing_to(&self, provider: &str) -> String {
        format!("Weiter zu {provider}")
    }
    fn leaving_for(&self, product: &str, provider: &str, host: &str) -> Html {
        Html(format!(
            "Sie verlassen {} für die Anmeldung bei {} auf <strong>{}</strong>, wo Sie sich anmelden und den Zugriff bestätigen. {} schickt Sie danach hierher zurück.",
            esc(product),
            esc(provider),
            esc(host),
            esc(provider)
        ))
    }
    fn continue_to(&self, provider: &str) -> String {
        format!("Weiter zu {provider}")
    }
    fn if_nothing_happens(&self) -> &'static str {
        "Falls nichts passiert, verwenden Sie die Schaltfläche."
    }

    fn consent_title(&self, service: &str) -> String {
        format!("{service} bittet um Zugriff")
    }
    fn connection_request(&self) -> &'static str {
        "Verbindungsanfrage"
    }
    fn wants_terms(&self, service: &str, provider: &str) -> Html {
        Html(format!(
            "<strong>{}</strong> bittet Sie, die Bedingungen von {} anzunehmen",
            esc(service),
            esc(provider)
        ))
    }
    fn wants_account(&self, service: &str, provider: &str) -> Html {
        Html(format!(
            "<strong>{}</strong> möchte Ihr {}-Konto verwenden",
            esc(service),
            esc(provider)
        ))
    }
    fn signed_in_as_html(&self, subject: &str) -> Html {
        Html(format!("Angemeldet als <strong>{}</strong>", esc(subject)))
    }
    fn replaces_title(&self) -> &'static str {
        "Dies ersetzt Ihre frühere Verbindung"
    }
    fn replaces(&self, service: &str, provider: &str, when: &str) -> String {
        format!(
            "Sie haben {service} am {when} mit {provider} verbunden. Wenn Sie zustimmen, ersetzt die neue Verbindung jene; wenn Sie ablehnen, bleibt die frühere unverändert."
        )
    }
    fn key_next_page(&self, provider: &str, product: &str) -> String {
        format!(
            "Auf der nächsten Seite werden Sie nach Ihrem {provider}-API-Schlüssel gefragt. {product} speichert ihn verschlüsselt."
        )
    }
    fn key_holder(&self, service: &str, provider: &str) -> String {
        format!(
            "{service} erhält den Schlüssel, wenn es für Sie {provider} aufruft. Ihr KI-Client und das Modell sehen ihn nie."
        )
    }
    fn oauth_where(&self, provider: &str, host: &str, product: &str) -> Html {
        let at = Some(host)
            .filter(|h| !h.is_empty())
            .map_or_else(String::new, |h| {
                format!(" auf <strong class=\"facts__host\">{}</strong>", esc(h))
            });
        Html(format!(
            "{} bittet Sie, sich{at} anzumelden und zu bestätigen. {} speichert den erteilten Zugriff verschlüsselt.",
            esc(provider),
            esc(product)
        ))
    }
    fn token_holder(&self, service: &str, provider: &str) -> String {
        format!(
            "{service} erhält ein Zugriffstoken, wenn es für Sie {provider} aufruft. Ihr KI-Client und das Modell sehen es nie."
        )
    }
    fn terms_record(&self, service: &str, product: &str) -> String {
        format!(
            "{product} hält fest, dass Sie diese Fassung angenommen haben. {service} erhält diesen Nachweis (die Fassung und eine Prüfsumme des Textes)."
        )
    }
    fn policy_limit(&self, until: &str, provider: &str, service: &str) -> String {
        let or_provider = Some(provider)
            .filter(|p| !p.is_empty())
            .map_or_else(String::new, |p| format!(" oder {p} ihn beendet"));
        format!(
            "Die Richtlinie Ihrer Organisation begrenzt diesen Zugriff: er endet {until}, oder früher, wenn Sie oder eine Administratorin bzw. ein Administrator ihn widerrufen{or_provider}. {service} fragt Sie dann erneut."
        )
    }
    fn terms_stand(&self) -> &'static str {
        "Ihre Zustimmung gilt, bis Sie oder die Administration sie widerrufen oder sich die Bedingungen ändern (dann werden Sie erneut gefragt)."
    }
    fn access_stands(&self, service: &str, provider: &str) -> String {
        format!(
            "{service} behält diesen Zugriff, bis Sie oder die Administration ihn widerrufen oder {provider} ihn beendet."
        )
    }
    fn approval_title(&self) -> &'static str {
        "Zusätzlich stimmt die Administration zu"
    }
    fn approval(&self, scopes: &[String], service: &str) -> String {
        let scopes = scopes.join(", ");
        format!(
            "Die Richtlinie Ihrer Organisation verlangt, dass nach Ihnen eine Administratorin oder ein Administrator dieses Consent-Brokers {scopes} genehmigt. Bis dahin kann {service} diesen Zugriff nicht nutzen; Sie müssen nichts weiter tun, und {service} erfährt die Entscheidung."
        )
    }
    fn terms_changed(&self) -> &'static str {
        "Die Bedingungen haben sich geändert"
    }
    fn terms_version(&self, version: &str) -> String {
        format!("Fassung {version}")
    }
    fn terms_full_text(&self, title: &str) -> String {
        format!("{title}, vollständiger Text")
    }
    fn terms_digest(&self) -> &'static str {
        "Prüfsumme des Dokuments:"
    }
    fn new_permissions(&self) -> &'static str {
        "Neue Berechtigungen"
    }
    fn requested_permissions(&self) -> &'static str {
        "Angefragte Berechtigungen"
    }
    fn no_new_permissions(&self) -> &'static str {
        "Keine neuen Berechtigungen: nur die, die Sie bereits erteilt haben."
    }
    fn no_permissions(&self) -> &'static str {
        "Keine bestimmten Berechtigungen angefragt."
    }
    fn already_granted(&self) -> &'static str {
        "Bereits erteilt, bleiben bestehen"
    }
    fn written_by(&self, service: &str, product: &str) -> Html {
        Html(format!(
            "Geschrieben von <strong>{}</strong>, nicht von {}:",
            esc(service),
            esc(product)
        ))
    }
    fn message_warning(&self, service: &str, product: &str) -> String {
        format!(
            "Vorsicht: Dieser Text verweist auf andere Seiten, nennt {product} oder erwähnt einen Schlüssel, ein Passwort oder einen Code. Er stammt von {service}. Folgen Sie seinen Links nicht und geben Sie deswegen niemandem ein Geheimnis."
        )
    }
    fn approve_key(&self) -> &'static str {
        "Weiter"
    }
    fn approve_terms(&self) -> &'static str {
        "Bedingungen annehmen"
    }
    fn approve_oauth(&self, provider: &str) -> String {
        format!("{provider} verbinden")
    }
    fn deny(&self) -> &'static str {
        "Ablehnen"
    }
    fn expires_in_minutes(&self, minutes: i64) -> String {
        if minutes == 1 {
            "in 1 Minute".to_owned()
        } else {
            format!("in {minutes} Minuten")
        }
    }
    fn expiry(&self, expires_in: &str, iso: &str, when: &str) -> Html {
        Html(format!(
            "Dieser Link läuft {} ab, um <time datetime=\"{}\">{}</time>. Das ist nur die Zeit für Ihre Antwort, nicht die Dauer des Zugriffs.",
            esc(expires_in),
            esc(iso),
            esc(when)
        ))
    }
    fn revoke_anytime(&self) -> Html {
        Html(
            "Sie können dies jederzeit unter <a href=\"/connections\">Ihre Verbindungen</a> widerrufen."
                .to_owned(),
        )
    }

    fn waiting(&self, service: &str, provider: &str, by: &str) -> (&'static str, String) {
        (
            "Warten auf die Administration",
            format!(
                "Sie haben zugestimmt. Die Richtlinie Ihrer Organisation verlangt außerdem, dass eine \
                 Administratorin oder ein Administrator dieses Consent-Brokers zustimmt, bevor {service} \
                 Ihren {provider}-Zugriff nutzen kann; bis dahin kann es das nicht. Sie müssen nichts \
                 weiter tun. Entscheidet bis {by} niemand, verfällt die Anfrage und {service} fragt Sie erneut."
            ),
        )
    }
    fn connected(&self, service: &str, provider: &str) -> (&'static str, String) {
        (
            "Verbunden",
            format!(
                "{service} kann jetzt Ihren {provider}-Zugriff nutzen. Sie können diesen Tab schließen und zu Ihrem Assistenten zurückkehren."
            ),
        )
    }
    fn declined_heading(&self) -> &'static str {
        "Anfrage abgelehnt"
    }
    fn declined_by_policy(&self, service: &str) -> String {
        format!(
            "Die Richtlinie Ihrer Organisation erlaubt Ihnen nicht, dies zu gewähren. Mit {service} \
             wurde nichts geteilt; Sie können diesen Tab schließen."
        )
    }
    fn declined_by_admin(&self, reason: &str, service: &str) -> String {
        format!(
            "Die Administration hat diese Anfrage abgelehnt ({reason}). Mit {service} wurde nichts \
             geteilt; Sie können diesen Tab schließen."
        )
    }
    fn declined(&self, service: &str) -> String {
        format!("Mit {service} wurde nichts geteilt. Sie können diesen Tab schließen.")
    }
    fn expired(&self) -> (&'static str, &'static str) {
        (
            "Diese Anfrage ist abgelaufen",
            "Bitten Sie Ihren Assistenten, neu zu beginnen; er schickt Ihnen einen neuen Link.",
        )
    }
    fn failed(&self, provider: &str, reason: &str) -> (&'static str, String) {
        (
            "Die Verbindung ist fehlgeschlagen",
            format!(
                "{provider} hat die Verbindung nicht abgeschlossen (Grund: {reason}). Es wurde nichts \
                 gespeichert. Bitten Sie Ihren Assistenten, neu zu beginnen."
            ),
        )
    }

    fn connections_lede(&self) -> &'static str {
        "Dienste, denen Sie erlaubt haben, für Sie zu handeln, und was sie nutzen dürfen. Ein Widerruf wirkt sofort: Der Dienst kann diesen Zugriff dann nicht mehr nutzen."
    }
    fn revoked_flash(&self, service: &str, provider: &str) -> String {
        format!("Widerrufen: {service} kann Ihren {provider}-Zugriff nicht mehr nutzen.")
    }
    fn connection_not_found(&self) -> (&'static str, &'static str) {
        (
            "Verbindung nicht gefunden",
            "Unter Ihren Verbindungen gibt es diese nicht. Vielleicht wurde sie entfernt; siehe Ihre Verbindungen.",
        )
    }
    fn active(&self) -> &'static str {
        "Aktiv"
    }
    fn no_active(&self) -> &'static str {
        "Sie haben keine aktiven Verbindungen."
    }
    fn uses_your(&self) -> &'static str {
        " nutzt Ihr Konto bei "
    }
    fn used_your(&self) -> &'static str {
        " nutzte Ihr Konto bei "
    }
    fn status(&self, status: &GrantStatus) -> &'static str {
        match status {
            GrantStatus::Active => "Aktiv",
            GrantStatus::Revoked => "Widerrufen",
            GrantStatus::NeedsReauth => "Erneute Anmeldung nötig",
            GrantStatus::AwaitingApproval => "Wartet auf die Administration",
        }
    }
    fn permissions(&self) -> &'static str {
        "Berechtigungen"
    }
    fn none_requested(&self) -> &'static str {
        "keine angefragt"
    }
    fn kind_heading(&self) -> &'static str {
        "Art"
    }
    fn kind(&self, kind: &ProviderKind) -> &'static str {
        match kind {
            ProviderKind::Oauth2 => "OAuth 2",
            ProviderKind::ApiKey => "API-Schlüssel",
            ProviderKind::Terms => "Bedingungen",
        }
    }
    fn connected_on(&self) -> &'static str {
        "Verbunden"
    }
    fn last_used(&self) -> &'static str {
        "Zuletzt genutzt"
    }
    fn never(&self) -> &'static str {
        "nie"
    }
    fn use_count(&self, count: &u64) -> String {
        format!("({count}-mal genutzt)")
    }
    fn access_ends(&self) -> &'static str {
        "Zugriff endet"
    }
    fn ends_by_policy(&self, service: &str) -> String {
        format!("(Richtlinie Ihrer Organisation; {service} fragt Sie dann erneut)")
    }
    fn ends_on_revoke(&self) -> &'static str {
        "wenn Sie oder die Administration ihn widerrufen"
    }
    fn revoke(&self) -> &'static str {
        "Widerrufen"
    }
    fn revoke_what(&self, service: &str, provider: &str) -> String {
        format!(": Zugriff von {service} auf {provider}")
    }
    fn revoked_heading(&self) -> &'static str {
        "Widerrufen"
    }
    fn revoked_on(&self) -> &'static str {
        "widerrufen"
    }

    fn identity_mismatch(&self) -> (&'static str, &'static str) {
        (
            "Dieser Link gilt für ein anderes Konto",
            "Sie sind als jemand anderes angemeldet als die Person, für die diese Anfrage gestellt \
             wurde. Es wurde nichts geteilt. Wenn Sie diesen Link nicht erwartet haben, schließen Sie \
             diesen Tab; wenn er Ihnen gilt, melden Sie sich ab und mit dem richtigen Konto an.",
        )
    }
    fn link_for_another(&self) -> (&'static str, &'static str) {
        (
            "Dieser Link gilt für ein anderes Konto",
            "Sie sind als jemand anderes angemeldet als die Person, für die diese Anfrage gestellt \
             wurde; es wurde daher nichts gezeigt oder geteilt. Wenn der Link Ihnen gilt, melden Sie \
             sich ab und mit dem richtigen Konto an; wenn Sie ihn nicht erwartet haben, schließen Sie \
             diesen Tab.",
        )
    }
    fn request_not_found(&self) -> (&'static str, &'static str) {
        ("Anfrage nicht gefunden", "Diese Anfrage gibt es nicht.")
    }
    fn form_expired(&self) -> (&'static str, &'static str) {
        (
            "Bitte versuchen Sie es erneut",
            "Das Formular ist abgelaufen oder stammt nicht von dieser Seite; gehen Sie zurück, laden Sie neu und versuchen Sie es erneut.",
        )
    }
    fn unavailable(&self) -> (&'static str, &'static str) {
        (
            "Vorübergehend nicht verfügbar",
            "Der Speicher des Brokers ist nicht erreichbar; versuchen Sie es gleich noch einmal.",
        )
    }
    fn went_wrong(&self) -> &'static str {
        "Etwas ist schiefgegangen"
    }
    fn error_code(&self, code: &str) -> String {
        format!("Fehlercode: {code}")
    }

    fn key_title(&self, provider: &str) -> String {
        format!("{provider}-API-Schlüssel")
    }
    fn key_eyebrow(&self, provider: &str) -> String {
        format!("{provider} verbinden")
    }
    fn key_heading(&self, provider: &str) -> String {
        format!("Geben Sie Ihren {provider}-API-Schlüssel ein")
    }
    fn key_needed(&self, service: &str, provider: &str) -> String {
        format!("{service} braucht einen API-Schlüssel, um für Sie {provider} aufzurufen.")
    }
    fn key_label(&self, provider: &str) -> String {
        format!("{provider}-API-Schlüssel")
    }
    fn key_hint(&self, product: &str, service: &str, provider: &str, header: &str) -> Html {
        let sent = if header.is_empty() {
            String::new()
        } else {
            format!(" (im Header <code>{}</code>)", esc(header))
        };
        Html(format!(
            "{} speichert den Schlüssel verschlüsselt. {} erhält ihn, wenn es für Sie {} aufruft{sent}. Ihr KI-Client und das Modell sehen ihn nie.",
            esc(product),
            esc(service),
            esc(provider)
        ))
    }
    fn save_key(&self) -> &'static str {
        "Schlüssel speichern"
    }
    fn cancel(&self) -> &'static str {
        "Abbrechen"
    }
    fn key_lasts(&self, service: &str, provider: &str) -> Html {
        Html(format!(
            "{} behält diesen Zugriff, bis Sie oder die Administration ihn widerrufen oder {} den Schlüssel nicht mehr annimmt. Sie können ihn jederzeit unter <a href=\"/connections\">Ihre Verbindungen</a> entfernen.",
            esc(service),
            esc(provider)
        ))
    }
}
