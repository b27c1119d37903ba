//! fleetsh patch: tokio's bounded channel with every message boxed.
//!
//! tokio allocates a channel's slots 32 at a time, in a block made when the channel is: a
//! session's `Msg` channel (88-byte messages) and each channel's `ChannelMsg` channel (80 bytes)
//! held ≈ 2.8 and 2.6 KB for the session's life, a quarter of an idle client session's heap.
//! Boxed, a slot is a pointer (a 256-byte block) and a message costs one allocation while it is
//! queued. Same API as tokio's for what russh uses; same bounds and backpressure.

use std::future::Future;
use std::task::{Context, Poll};

use futures::TryFutureExt;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::{SendError, TryRecvError, TrySendError};

/// A bounded channel of boxed messages (see the module's doc).
pub fn channel<T>(buffer: usize) -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = mpsc::channel(buffer);
    (Sender(tx), Receiver(rx))
}

/// The sending half: [`mpsc::Sender`] of boxed messages.
#[derive(Debug)]
pub struct Sender<T>(mpsc::Sender<Box<T>>);

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender(self.0.clone())
    }
}

impl<T> Sender<T> {
    /// [`mpsc::Sender::send`].
    pub async fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.0
            .send(Box::new(value))
            .await
            .map_err(|SendError(b)| SendError(*b))
    }

    /// [`mpsc::Sender::try_send`].
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.0.try_send(Box::new(value)).map_err(|e| match e {
            TrySendError::Full(b) => TrySendError::Full(*b),
            TrySendError::Closed(b) => TrySendError::Closed(*b),
        })
    }

    /// [`mpsc::Sender::is_closed`].
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    /// [`mpsc::Sender::closed`].
    pub async fn closed(&self) {
        self.0.closed().await
    }

    /// [`mpsc::Sender::reserve_owned`].
    pub fn reserve_owned(
        self,
    ) -> impl Future<Output = Result<OwnedPermit<T>, SendError<()>>> + Send + Sync
    where
        T: Send,
    {
        self.0.reserve_owned().map_ok(OwnedPermit)
    }
}

/// [`mpsc::OwnedPermit`] for a boxed message.
#[derive(Debug)]
pub struct OwnedPermit<T>(mpsc::OwnedPermit<Box<T>>);

impl<T> OwnedPermit<T> {
    /// [`mpsc::OwnedPermit::send`].
    pub fn send(self, value: T) -> Sender<T> {
        Sender(self.0.send(Box::new(value)))
    }
}

/// The receiving half: [`mpsc::Receiver`] of boxed messages, unboxed as they are taken.
#[derive(Debug)]
pub struct Receiver<T>(mpsc::Receiver<Box<T>>);

impl<T> Receiver<T> {
    /// [`mpsc::Receiver::recv`].
    pub async fn recv(&mut self) -> Option<T> {
        self.0.recv().await.map(|b| *b)
    }

    /// [`mpsc::Receiver::try_recv`].
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.0.try_recv().map(|b| *b)
    }

    /// [`mpsc::Receiver::poll_recv`].
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| *b))
    }

    /// [`mpsc::Receiver::close`].
    pub fn close(&mut self) {
        self.0.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fleetsh_boxed_channel_keeps_order_bounds_and_closing() {
        let (tx, mut rx) = channel::<u32>(2);
        tx.send(1).await.unwrap();
        tx.try_send(2).unwrap();
        // Bounded as tokio's: the third message waits for room.
        assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
        let permit = tx.clone().reserve_owned();
        assert_eq!(rx.recv().await, Some(1));
        permit.await.unwrap().send(3);
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.recv().await, Some(3));
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
        rx.close();
        assert!(tx.is_closed());
        assert!(matches!(tx.send(4).await, Err(SendError(4))));
        tx.closed().await;
        drop(tx);
        assert_eq!(rx.recv().await, None);
    }
}
