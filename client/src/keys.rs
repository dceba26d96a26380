//! Signing keys for renters and providers: dev URIs (`//Alice`), seed phrases, `0x` secret
//! seeds, and polkadot.js JSON exports (password from `CAPACLOUD_KEY_PASSWORD` or a prompt);
//! new keys as 24-word phrases.

use crate::chain::revive;
use std::io::IsTerminal;
use std::str::FromStr;
use std::path::{Path, PathBuf};
use subxt::utils::{AccountId32, H160};
use subxt_signer::bip39::Mnemonic;
use subxt_signer::sr25519::Keypair;
use subxt_signer::SecretUri;

/// `$CAPACLOUD_HOME`, else `~/.capacloud`: where `make setup` installs the node and chain
/// spec, and where `keys import` keeps key files (`keys/`). `None` without either variable.
pub fn capacloud_home() -> Option<PathBuf> {
    std::env::var_os("CAPACLOUD_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".capacloud")))
}

/// The environment variable a JSON key file's password is read from.
pub const PASSWORD_ENV: &str = "CAPACLOUD_KEY_PASSWORD";

/// Why a key could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("invalid secret URI or seed phrase: {0}")]
    BadSecret(String),
    #[error("cannot read key file {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key file {path} is not a usable polkadot.js sr25519 export (or the password is wrong): {reason}")]
    Json { path: PathBuf, reason: String },
    #[error("key file {0} needs a password: set {PASSWORD_ENV} or run in a terminal to be asked")]
    NoPassword(PathBuf),
    #[error("give either a secret URI (--suri) or a key file (--key-file), not both")]
    Ambiguous,
    #[error("no key: give --suri or --key-file")]
    Missing,
    #[error("no randomness for a new key: {0}")]
    Random(String),
}

/// A loaded key and a secret derived from its secret key, from which a worker derives its
/// result salts (stable across restarts and key sources, unknown to others).
pub struct Key {
    pub pair: Keypair,
    pub salt_secret: [u8; 32],
}

impl Key {
    /// The key's Substrate account.
    pub fn account(&self) -> AccountId32 {
        self.pair.public_key().into()
    }

    /// The key's contract (H160) address.
    pub fn h160(&self) -> H160 {
        revive::h160_of(&self.account())
    }
}

/// The salt secret of a key: the public key of its hard-derived child `//capacloud-salt`.
/// Hard derivation needs the secret key, so nobody else can compute it, and it depends on
/// the secret key alone: the same key loaded from a URI, a phrase or a JSON export gives the
/// same salts (a worker can switch key sources between its commitment and its reveal).
fn salt_secret(pair: &Keypair) -> [u8; 32] {
    let child = pair.derive([subxt_signer::DeriveJunction::hard("capacloud-salt")]);
    let mut v = b"capacloud-salt".to_vec();
    v.extend_from_slice(&child.public_key().0);
    crate::blob::sha256(&v)
}

/// A key from a dev URI, seed phrase or `0x` secret seed (with optional derivation path).
///
/// # Errors
/// [`KeyError::BadSecret`].
pub fn from_suri(suri: &str) -> Result<Key, KeyError> {
    let uri = SecretUri::from_str(suri).map_err(|e| KeyError::BadSecret(e.to_string()))?;
    let pair = Keypair::from_uri(&uri).map_err(|e| KeyError::BadSecret(e.to_string()))?;
    Ok(Key { salt_secret: salt_secret(&pair), pair })
}

/// A key from a polkadot.js JSON export. The password is `password`, else
/// `$CAPACLOUD_KEY_PASSWORD`, else asked on the terminal.
///
/// # Errors
/// [`KeyError::File`], [`KeyError::Json`] (also for a wrong password), [`KeyError::NoPassword`].
pub fn from_json_file(path: &Path, password: Option<&str>) -> Result<Key, KeyError> {
    let json = std::fs::read_to_string(path).map_err(|source| KeyError::File { path: path.into(), source })?;
    from_json(&json, path, password)
}

/// [`from_json_file`] on the file's text (`path` names it in errors and the prompt).
fn from_json(json: &str, path: &Path, password: Option<&str>) -> Result<Key, KeyError> {
    let password = match password.map(str::to_owned).or_else(|| std::env::var(PASSWORD_ENV).ok()) {
        Some(p) => p,
        None if std::io::stdin().is_terminal() => rpassword::prompt_password(format!("password for {}: ", path.display()))
            .map_err(|source| KeyError::File { path: path.into(), source })?,
        None => return Err(KeyError::NoPassword(path.into())),
    };
    let pair = subxt_signer::polkadot_js_compat::decrypt_json(json, &password)
        .map_err(|e| KeyError::Json { path: path.into(), reason: e.to_string() })?;
    Ok(Key { salt_secret: salt_secret(&pair), pair })
}

/// The key named on a command line: exactly one of a secret URI and a key file.
///
/// # Errors
/// [`KeyError::Ambiguous`], [`KeyError::Missing`], and the loaders' errors.
pub fn load(suri: Option<&str>, key_file: Option<&Path>) -> Result<Key, KeyError> {
    match (suri, key_file) {
        (Some(s), None) => from_suri(s),
        (None, Some(f)) => from_json_file(f, None),
        (Some(_), Some(_)) => Err(KeyError::Ambiguous),
        (None, None) => Err(KeyError::Missing),
    }
}

/// A new key: a random 24-word English phrase and its keypair.
///
/// # Errors
/// [`KeyError::Random`].
pub fn generate() -> Result<(Mnemonic, Key), KeyError> {
    let mut entropy = [0u8; 32];
    getrandom::getrandom(&mut entropy).map_err(|e| KeyError::Random(e.to_string()))?;
    let phrase = Mnemonic::from_entropy(&entropy).map_err(|e| KeyError::Random(e.to_string()))?;
    let key = from_suri(&phrase.to_string())?;
    Ok((phrase, key))
}

/// Copies a polkadot.js export into `dir` as `<account>.json` (mode 0600) after checking
/// that it decrypts; returns the key and the new file's path.
///
/// # Errors
/// The loader's errors; [`KeyError::File`] when the copy fails.
pub fn import(json: &Path, dir: &Path, password: Option<&str>) -> Result<(Key, PathBuf), KeyError> {
    let text = std::fs::read_to_string(json).map_err(|source| KeyError::File { path: json.into(), source })?;
    let key = from_json(&text, json, password)?;
    let io = |source| KeyError::File { path: dir.into(), source };
    std::fs::create_dir_all(dir).map_err(io)?;
    let dest = dir.join(format!("{}.json", key.account()));
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    std::fs::write(tmp.path(), &text).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    tmp.persist(&dest).map_err(|e| io(e.error))?;
    Ok((key, dest))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// polkadot.js's own export of the dev account Alice (password `whoisalice`), the
    /// published test vector of its keyring format (`tests/fixtures`).
    const ALICE_JSON: &str = include_str!("../../tests/fixtures/alice-polkadotjs.json");

    #[test]
    fn polkadot_js_export_decrypts_to_the_same_account_as_the_dev_uri() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("alice.json");
        std::fs::write(&file, ALICE_JSON).unwrap();
        let from_json = from_json_file(&file, Some("whoisalice")).unwrap();
        let from_uri = from_suri("//Alice").unwrap();
        assert_eq!(from_json.account(), from_uri.account());
        assert_eq!(from_json.h160(), from_uri.h160());
        assert_eq!(from_json.salt_secret, from_uri.salt_secret, "salts follow the secret key, not its source");
        assert_eq!(from_json.account().to_string(), "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY");
        assert!(matches!(from_json_file(&file, Some("wrong")), Err(KeyError::Json { .. })));

        let keystore = dir.path().join("keys");
        let (key, dest) = import(&file, &keystore, Some("whoisalice")).unwrap();
        assert_eq!(dest, keystore.join(format!("{}.json", key.account())));
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), ALICE_JSON);
        assert!(import(&file, &keystore, Some("nope")).is_err());
    }

    #[test]
    fn generated_phrases_are_fresh_and_reload_to_the_same_key() {
        let (phrase, key) = generate().unwrap();
        assert_eq!(phrase.word_count(), 24);
        assert_eq!(from_suri(&phrase.to_string()).unwrap().account(), key.account());
        assert_ne!(generate().unwrap().1.account(), key.account());
    }

    #[test]
    fn exactly_one_key_source() {
        assert!(matches!(load(None, None), Err(KeyError::Missing)));
        assert!(matches!(load(Some("//Bob"), Some(Path::new("k.json"))), Err(KeyError::Ambiguous)));
        assert!(matches!(load(Some("not a phrase at all"), None), Err(KeyError::BadSecret(_))));
        assert!(matches!(from_suri("not a valid uri ///"), Err(KeyError::BadSecret(_))));
        assert!(from_suri("//Alice").is_ok());
        assert!(matches!(load(None, Some(Path::new("/nonexistent/k.json"))), Err(KeyError::File { .. })));
        assert_ne!(from_suri("//Bob").unwrap().salt_secret, from_suri("//Charlie").unwrap().salt_secret);
    }
}
