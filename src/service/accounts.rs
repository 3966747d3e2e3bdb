//! Accounts from the configuration: token authentication (constant time, tokens never
//! kept in clear after start) and the bootstrap of each account's default pipeline.

use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::AccountSettings;
use crate::domain::Account;
use crate::domain::ids::{AccountId, PipelineId, StatusId};
use crate::domain::pipeline::Pipeline;
use crate::store::{Sequence, Store, StoreResult, catalog};

pub struct Accounts {
    entries: Vec<(Account, [u8; 32])>,
}

impl Accounts {
    pub fn from_settings(settings: &[AccountSettings]) -> Self {
        Self {
            entries: settings
                .iter()
                .map(|a| {
                    let account = Account {
                        id: AccountId(a.account_id),
                        subdomain: a.subdomain.clone(),
                    };
                    (
                        account,
                        Sha256::digest(a.token.expose_secret().as_bytes()).into(),
                    )
                })
                .collect(),
        }
    }

    /// The account a bearer token belongs to. Every account's digest is compared, in
    /// constant time, so the answer's timing tells nothing about any token.
    pub fn authenticate(&self, token: &str) -> Option<&Account> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (account, expected) in &self.entries {
            if bool::from(expected.ct_eq(&digest)) {
                found = Some(account);
            }
        }
        found
    }

    pub fn get(&self, id: AccountId) -> Option<&Account> {
        self.entries.iter().map(|(a, _)| a).find(|a| a.id == id)
    }

    pub fn all(&self) -> impl Iterator<Item = &Account> {
        self.entries.iter().map(|(a, _)| a)
    }
}

/// Gives each account its default pipeline the first time it is seen; safe when several
/// instances start at once (one claims the step).
pub async fn bootstrap(store: &dyn Store, accounts: &Accounts) -> StoreResult<()> {
    for account in accounts.all() {
        if !store
            .claim_once(&format!("bootstrap:{}", account.id))
            .await?
        {
            continue;
        }
        let pipeline_id = PipelineId(store.next_id(Sequence::Pipeline).await?);
        let mut ids = [StatusId(0); 3];
        for id in &mut ids {
            *id = StatusId(store.next_id(Sequence::Status).await?);
        }
        let pipeline = Pipeline::default_for(account.id, pipeline_id, ids);
        catalog::put(store, &pipeline).await?;
        tracing::info!(account = %account.id, pipeline = %pipeline_id, "created the default pipeline");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_authenticate_their_own_account_only() {
        let accounts = Accounts::from_settings(&[
            AccountSettings {
                account_id: 1,
                subdomain: "a".into(),
                token: "token-of-a".to_owned().into(),
            },
            AccountSettings {
                account_id: 2,
                subdomain: "b".into(),
                token: "token-of-b".to_owned().into(),
            },
        ]);
        assert_eq!(
            accounts.authenticate("token-of-b").map(|a| a.id),
            Some(AccountId(2))
        );
        assert_eq!(
            accounts.authenticate("token-of-a").map(|a| a.id),
            Some(AccountId(1))
        );
        assert!(accounts.authenticate("token-of-").is_none());
        assert!(accounts.authenticate("").is_none());
    }
}
