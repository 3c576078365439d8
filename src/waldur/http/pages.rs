//! `Link`-header pagination: every page of a listing, with the checks that stop a server
//! whose pages never end or repeat.

use std::hash::Hasher;

use serde::de::DeserializeOwned;

use super::{Client, PAGE_SIZE};
use crate::waldur::error::ApiError;
use crate::waldur::url::Query;

impl Client {
    /// GET every page of a list, following `Link: rel="next"` (only its `page` value is taken,
    /// so the next request goes to the configured base URL with the same parameters).
    pub fn list<T: DeserializeOwned>(&self, path: &str, query: &Query) -> Result<Vec<T>, ApiError> {
        self.list_counted(path, query).map(|l| l.items)
    }

    /// [`Client::list`], with the `X-Result-Count` of the first page, so that a caller can
    /// tell whether the pages added up to the listing the server counted.
    pub fn list_counted<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &Query,
    ) -> Result<Listing<T>, ApiError> {
        let mut query = query.clone();
        query.set("page_size", PAGE_SIZE.to_string());
        let mut listing = Listing {
            items: Vec::new(),
            result_count: None,
            pages: 0,
        };
        let fail = |detail: String| ApiError::Decode {
            method: "GET".into(),
            path: self.display_path(path),
            detail,
        };
        // A hash of each whole page read, to see a server that serves the same page again.
        // (Rows that move between pages of an order with ties are a different matter, left to
        // the caller: see `api::listing_gap`.)
        let mut page_hashes = std::collections::HashSet::new();
        let mut page_len: u64 = 0;
        let mut page: u64 = 1;
        loop {
            if page > 1 {
                query.set("page", page.to_string());
            }
            let (rows, reply) = self.get_json::<Vec<serde_json::Value>>(path, &query)?;
            if listing.pages == 0 {
                listing.result_count = reply
                    .header("x-result-count")
                    .and_then(|c| c.trim().parse().ok());
                page_len = rows.len() as u64;
            }
            listing.pages += 1;
            let repeated = !rows.is_empty()
                && !page_hashes.insert(hash_of(&serde_json::Value::Array(rows.clone())));
            if repeated {
                return Err(fail(format!(
                    "page {page} is a page already read; the server's pagination is broken"
                )));
            }
            for row in rows {
                listing
                    .items
                    .push(serde_json::from_value(row).map_err(|e| fail(e.to_string()))?);
            }
            if let Some(count) = listing.result_count {
                let announced = count.div_ceil(page_len.max(1)).max(1);
                if listing.pages > announced + 1 {
                    return Err(fail(format!(
                        "more pages than the {announced} that X-Result-Count {count} announces \
                         ({} read); the server's pagination is broken",
                        listing.pages
                    )));
                }
            }
            match next_page(reply.header("link")) {
                Some(_) if listing.pages >= self.shared.options.max_pages => {
                    return Err(fail(format!(
                        "still a next page after {} pages, the most one listing may have \
                         (--max-pages); the server's pagination is broken",
                        self.shared.options.max_pages
                    )));
                }
                Some(next) if next > page => page = next,
                Some(next) => {
                    return Err(fail(format!(
                        "the Link header points back to page {next} from page {page}"
                    )));
                }
                None => return Ok(listing),
            }
        }
    }
}

/// Every page of a list, as [`Client::list_counted`] read it.
#[derive(Debug, Clone)]
pub struct Listing<T> {
    /// The rows of all pages, in the order read.
    pub items: Vec<T>,
    /// `X-Result-Count` of the first page: how many rows the server counted then.
    pub result_count: Option<u64>,
    /// Pages read.
    pub pages: u64,
}

/// The `page` value of the `rel="next"` link, if any.
fn next_page(link: Option<&str>) -> Option<u64> {
    let link = link?;
    for part in link.split(',') {
        let (url, params) = part.split_once(';').unwrap_or((part, ""));
        let is_next = params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        });
        if !is_next {
            continue;
        }
        let url = url.trim().trim_start_matches('<').trim_end_matches('>');
        let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
        return Query::parse(query).get("page")?.parse().ok();
    }
    None
}

/// A hash of a JSON value, to recognise a page seen before without keeping it twice.
fn hash_of(value: &serde_json::Value) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    h.write(value.to_string().as_bytes());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_page_is_read_from_the_link_header() {
        let link = "<https://w/api/x/?page_size=300>; rel=\"first\", \
                    <https://w/api/x/?page=3&page_size=300>; rel=\"next\", \
                    <https://w/api/x/?page=5&page_size=300>; rel=\"last\"";
        assert_eq!(next_page(Some(link)), Some(3));
        let last = "<https://w/api/x/?page_size=300>; rel=\"first\", \
                    <https://w/api/x/?page=4&page_size=300>; rel=\"prev\"";
        assert_eq!(next_page(Some(last)), None);
        assert_eq!(next_page(None), None);
    }
}
