//! The in-memory store: channels.

use super::*;

#[async_trait]
impl ChannelStore for MemoryStore {
    async fn save_channel(&self, channel: SalesChannel) -> Result<SalesChannel> {
        channel.validate()?;
        let mut s = self.lock();
        let taken = s
            .channels
            .values()
            .any(|c| c.id != channel.id && c.name.trim().eq_ignore_ascii_case(channel.name.trim()));
        if taken {
            return Err(Error::AlreadyExists {
                what: "sales channel",
                value: channel.name.clone(),
            });
        }
        match s.channels.get(&channel.id) {
            Some(stored) if stored.version != channel.version => {
                return Err(Error::Conflict("sales channel"));
            }
            None if channel.version != 0 => {
                return Err(Error::not_found("sales channel", channel.id));
            }
            _ => {}
        }
        let mut saved = channel;
        saved.version += 1;
        s.channels.insert(saved.id, saved.clone());
        Ok(saved)
    }

    async fn channel(&self, id: ChannelId) -> Result<SalesChannel> {
        self.lock()
            .channels
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("sales channel", id))
    }

    async fn channels(&self) -> Result<Vec<SalesChannel>> {
        let mut all: Vec<SalesChannel> = self
            .lock()
            .channels
            .values()
            .take(crate::store::MAX_PAGE_SIZE)
            .cloned()
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }
}
