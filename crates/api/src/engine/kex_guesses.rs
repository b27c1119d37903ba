//! How an engine's key exchange guesses went.

/// Counts of key exchange guesses ([`Engine::kex_guesses`]).
///
/// [`Engine::kex_guesses`]: crate::Engine::kex_guesses
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct KexGuesses {
    /// Handshakes whose guess the server answered: each saved one round trip.
    pub right: u64,
    /// Handshakes whose guess the server ignored (its first choices were not ours): each
    /// cost an unused key pair and packet. After one, the engine stops guessing until a
    /// server agrees with its first choices again.
    pub wrong: u64,
}
