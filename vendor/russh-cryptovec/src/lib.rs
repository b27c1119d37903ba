#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

// Copyright 2016 Pierre-Étienne Meunier
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
// http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.
//

// Re-export CryptoVec from the cryptovec module
mod cryptovec;
pub use cryptovec::CryptoVec;

// Platform-specific modules
// fleetsh patch: the memory-locking helpers are no longer called (src/cryptovec.rs).
#[allow(dead_code, unused_imports)]
mod platform;

#[cfg(feature = "ssh-encoding")]
mod ssh;
