//! Follows the best blocks and yields the events one marketplace contract emitted (they wake
//! the provider's passes, which read the chain themselves: a block that is later retracted
//! costs a pass, nothing more).

use capacloud_client::chain::{self, ChainError, ContractEvent};
use std::future::Future;
use subxt::utils::H160;
use subxt::OnlineClient;
use tokio::sync::mpsc;

/// A marketplace event with the best block that carried it.
#[derive(Clone, Debug)]
pub struct Observed {
    pub block_number: u32,
    pub event: ContractEvent,
}

/// Streams `contract`'s events from every new best block into `tx` until `shutdown`
/// resolves or the receiver is dropped. Undecodable events are passed on raw.
///
/// # Errors
/// The chain subscription failing (the caller reconnects).
pub async fn follow(
    client: OnlineClient<chain::Config>,
    contract: H160,
    tx: mpsc::Sender<Observed>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ChainError> {
    let mut blocks = client.blocks().subscribe_best().await?;
    tokio::pin!(shutdown);
    loop {
        let block = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            next = blocks.next() => match next {
                Some(b) => b?,
                None => return Err(ChainError::Unexpected("best block subscription ended".into())),
            },
        };
        let number = block.number();
        for event in chain::contract_events_at(&client, block.hash()).await? {
            if event.contract != contract {
                continue;
            }
            tracing::info!(block = number, decoded = ?event.decoded, "marketplace event");
            if tx.send(Observed { block_number: number, event }).await.is_err() {
                return Ok(());
            }
        }
    }
}

/// [`follow`] with reconnection: restarts the subscription after a failure (counting it in
/// `metrics`) until the receiver is dropped. Run it as a task and abort it to stop.
pub async fn follow_forever(client: OnlineClient<chain::Config>, contract: H160, tx: mpsc::Sender<Observed>, metrics: std::sync::Arc<crate::metrics::Metrics>) {
    while !tx.is_closed() {
        match follow(client.clone(), contract, tx.clone(), std::future::pending()).await {
            Ok(()) => return,
            Err(e) => {
                metrics.rpc_errors.inc();
                tracing::warn!(%e, "event subscription failed; resubscribing in 2 s (passes keep polling)");
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
        }
    }
}
