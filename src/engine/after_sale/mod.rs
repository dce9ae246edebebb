//! After the sale: return requests (RMA) answered by the shop's return
//! policy, approved, received and refunded; claims (damaged, missing or
//! wrong units refunded or replaced without a return); units of some lines
//! cancelled before they ship.
//!
//! Every step is a pure change to the order (`crate::order`) saved under
//! the order's version check, so it is decided together with every other
//! change to the same order — shipments, cancellations, other returns —
//! on either store and from any number of engines. Money moves only by the
//! [money-path protocol](crate::money_path): the refund is recorded as a
//! pending operation in the same save that moves the request to
//! *refunded*, then the provider is called under the operation's own key.
//! Each step records an [`EventKind::AfterSale`](crate::event::EventKind::AfterSale)
//! event in the outbox.
//!
//! Does not know: how orders are stored or payments made: it sequences
//! domain decisions, store commands and the money path.

mod cancel_lines;
mod claims;
mod edits;
mod exchanges;
mod returns;

pub use cancel_lines::CancelItems;
pub(crate) use cancel_lines::{free_stock, held_stock};
pub use claims::NewClaim;
pub use edits::{EditPreview, EditRequest};
pub use exchanges::{ChargePayment, MAX_EXCHANGE_LINES, NewExchange};
pub use returns::RefundReturn;
