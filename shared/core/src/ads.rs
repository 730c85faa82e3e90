//! The ad inventory and ad choice: each break gets the ad whose labels are most like the labels
//! seen around the break (Jaccard similarity of the two name sets).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// The inventory compiled in: the reference sample's ads (each pointing at a placeholder creative
/// cuepoint generates itself, see [`Ad::is_placeholder`]; campaigns bring their own inventory) with
/// labels added for the names the local label model gives (ImageNet classes such as "Sports Car"
/// and the broader labels it files them under, such as "Vehicle", "Pet" or "Beverage"), so ads
/// follow the content on the embedded default as they do with Rekognition's labels.
pub const DEFAULT_INVENTORY_JSON: &str = include_str!("../data/ads.json");

/// One ad: a media file URL and the labels it suits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ad {
    pub url: String,
    #[serde(default)]
    pub labels: Vec<String>,
}

/// `{"ads": [{"url": ..., "labels": [...]}, ...]}`, in file order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdInventory {
    pub ads: Vec<Ad>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AdsError {
    #[error("invalid ad inventory JSON (expected {{\"ads\": [{{\"url\": ..., \"labels\": [...]}}]}}): {0}")]
    Json(String),
    #[error("the ad inventory has no ads")]
    Empty,
    #[error("ad {index} (counting from 0) has an empty url")]
    EmptyUrl { index: usize },
}

impl Ad {
    /// A relative url (no scheme) names a placeholder creative kept under the output bucket;
    /// cuepoint generates it when a VMAP first names it.
    pub fn is_placeholder(&self) -> bool {
        !self.url.contains("://")
    }
}

impl AdInventory {
    /// Rewrites the placeholder urls as objects of `bucket` (the output bucket).
    pub fn resolve_placeholders(
        &mut self,
        bucket: &crate::domain::BucketName,
    ) -> Result<(), crate::domain::DomainError> {
        for ad in self.ads.iter_mut().filter(|a| a.is_placeholder()) {
            let key = crate::domain::ObjectKey::parse(ad.url.trim_start_matches('/'))?;
            ad.url = crate::domain::S3Uri::new(bucket.clone(), key).to_string();
        }
        Ok(())
    }

    /// Parses and checks an inventory: at least one ad, every url non-empty.
    pub fn parse(json: &str) -> Result<AdInventory, AdsError> {
        let inv: AdInventory =
            serde_json::from_str(json).map_err(|e| AdsError::Json(e.to_string()))?;
        if inv.ads.is_empty() {
            return Err(AdsError::Empty);
        }
        if let Some(index) = inv.ads.iter().position(|a| a.url.trim().is_empty()) {
            return Err(AdsError::EmptyUrl { index });
        }
        Ok(inv)
    }

    /// The compiled-in inventory (`shared/core/data/ads.json`).
    pub fn default_inventory() -> AdInventory {
        // The file is part of the build and a unit test parses it, so this cannot fail at run time.
        Self::parse(DEFAULT_INVENTORY_JSON).expect("shared/core/data/ads.json is a valid inventory")
    }

    /// The ad most similar to `slot_labels`, and its similarity. Ties go to the first ad in
    /// inventory order (the sample shuffles the inventory and so breaks ties at random; a
    /// deterministic choice makes the VMAP reproducible). With no label in common anywhere, that
    /// is the first ad. `None` only for an empty inventory.
    pub fn choose_scored<S: AsRef<str>>(&self, slot_labels: &[S]) -> Option<(&Ad, f64)> {
        let slot: BTreeSet<&str> = slot_labels.iter().map(AsRef::as_ref).collect();
        let mut best: Option<(&Ad, f64)> = None;
        for ad in &self.ads {
            let labels: BTreeSet<&str> = ad.labels.iter().map(String::as_str).collect();
            let similarity = jaccard(&slot, &labels);
            if best.is_none_or(|(_, b)| similarity > b) {
                best = Some((ad, similarity));
            }
        }
        best
    }

    /// [`choose_scored`](Self::choose_scored) without the similarity.
    pub fn choose<S: AsRef<str>>(&self, slot_labels: &[S]) -> Option<&Ad> {
        self.choose_scored(slot_labels).map(|(ad, _)| ad)
    }
}

/// |a ∩ b| / |a ∪ b|; 0 when both are empty.
pub fn jaccard(a: &BTreeSet<&str>, b: &BTreeSet<&str>) -> f64 {
    let common = a.intersection(b).count();
    let union = a.len() + b.len() - common;
    if union == 0 {
        0.0
    } else {
        common as f64 / union as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(json: &str) -> AdInventory {
        AdInventory::parse(json).unwrap()
    }

    #[test]
    fn default_inventory_keeps_the_reference_ads_and_labels() {
        let inv = AdInventory::default_inventory();
        let names: Vec<&str> = inv
            .ads
            .iter()
            .map(|a| a.url.rsplit('/').next().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "AD-caribbean-15.mp4",
                "AD-music-15.mp4",
                "AD-carracing-15.mp4",
                "AD-perfume-15.mp4",
                "AD-polarbear-15.mp4",
                "AD-robots-15.mp4",
                "AD-skiing-15.mp4",
                "AD-sports-15.mp4"
            ]
        );
        // The sample's labels come first, in its order.
        assert_eq!(
            inv.ads[7].labels[..9],
            [
                "Sport",
                "Sports",
                "Basketball",
                "Football",
                "Baseball",
                "Hockey",
                "Soccer",
                "Tennis",
                "Golf"
            ]
        );
        for ad in &inv.ads {
            let distinct: BTreeSet<&str> = ad.labels.iter().map(String::as_str).collect();
            assert_eq!(
                distinct.len(),
                ad.labels.len(),
                "{} repeats a label",
                ad.url
            );
        }
    }

    /// What the local label model writes around a slot: an ImageNet class and the broader labels
    /// it is filed under, each a label of its own.
    #[test]
    fn local_labels_pick_ads_that_fit_the_content() {
        let inv = AdInventory::default_inventory();
        let pick = |labels: &[&str]| {
            let url = &inv.choose(labels).unwrap().url;
            url.rsplit('/').next().unwrap().to_string()
        };
        assert_eq!(
            pick(&["Tabby", "Cat", "Mammal", "Pet", "Animal"]),
            "AD-polarbear-15.mp4"
        );
        assert_eq!(
            pick(&[
                "Golden Retriever",
                "Dog",
                "Canine",
                "Mammal",
                "Pet",
                "Animal"
            ]),
            "AD-polarbear-15.mp4"
        );
        assert_eq!(
            pick(&["Sports Car", "Car", "Vehicle", "Transportation"]),
            "AD-carracing-15.mp4"
        );
        assert_eq!(
            pick(&["Laptop", "Computer", "Electronics"]),
            "AD-robots-15.mp4"
        );
        assert_eq!(
            pick(&["Grand Piano", "Musical Instrument"]),
            "AD-music-15.mp4"
        );
        assert_eq!(pick(&["Soccer Ball", "Sport"]), "AD-sports-15.mp4");
        assert_eq!(
            pick(&["Alp", "Ski", "Outdoors", "Nature"]),
            "AD-skiing-15.mp4"
        );
        assert_eq!(
            pick(&["Orange", "Fruit", "Food", "Plant"]),
            "AD-caribbean-15.mp4"
        );
    }

    #[test]
    fn chooses_by_jaccard() {
        let inv = AdInventory::default_inventory();
        let (ad, sim) = inv.choose_scored(&["Snow", "Skiing", "Person"]).unwrap();
        assert!(ad.url.ends_with("AD-skiing-15.mp4"));
        // skiing: {Skiing, Snow} common, union 12 + 1 = 13.
        assert!((sim - 2.0 / 13.0).abs() < 1e-12);
        let ad = inv.choose(&["Car", "Asphalt"]).unwrap();
        assert!(ad.url.ends_with("AD-carracing-15.mp4"));
    }

    #[test]
    fn ties_go_to_the_first_in_inventory_order() {
        let inv = inv(r#"{"ads":[{"url":"a","labels":["X","Y"]},{"url":"b","labels":["X","Z"]}]}"#);
        assert_eq!(inv.choose(&["X"]).unwrap().url, "a");
        // Nothing in common anywhere: the first ad.
        assert_eq!(inv.choose(&["Q"]).unwrap().url, "a");
        let none: [&str; 0] = [];
        assert_eq!(inv.choose(&none).unwrap().url, "a");
        assert_eq!(inv.choose(&["Z"]).unwrap().url, "b");
    }

    #[test]
    fn duplicate_slot_labels_count_once() {
        let inv = inv(r#"{"ads":[{"url":"a","labels":["X","Y"]}]}"#);
        assert_eq!(inv.choose_scored(&["X", "X", "Y"]).unwrap().1, 1.0);
    }

    #[test]
    fn jaccard_edges() {
        let e = BTreeSet::new();
        assert_eq!(jaccard(&e, &e), 0.0);
        let a: BTreeSet<&str> = ["A", "B"].into();
        let b: BTreeSet<&str> = ["B", "C", "D"].into();
        assert_eq!(jaccard(&a, &b), 0.25);
        assert_eq!(jaccard(&a, &a), 1.0);
    }

    #[test]
    fn bad_inventories_are_rejected_clearly() {
        assert_eq!(AdInventory::parse(r#"{"ads":[]}"#), Err(AdsError::Empty));
        assert_eq!(
            AdInventory::parse(r#"{"ads":[{"url":"a"},{"url":" "}]}"#),
            Err(AdsError::EmptyUrl { index: 1 })
        );
        let err = AdInventory::parse(r#"{"ads":[{"labels":["X"]}]}"#).unwrap_err();
        assert!(err.to_string().contains("missing field `url`"), "{err}");
        let err = AdInventory::parse("not json").unwrap_err();
        assert!(matches!(err, AdsError::Json(_)));
        // Labels are optional (an ad for any slot).
        assert_eq!(inv(r#"{"ads":[{"url":"a"}]}"#).ads[0].labels.len(), 0);
    }

    #[test]
    fn the_built_in_creatives_are_placeholders_resolved_under_the_output_bucket() {
        let mut inv = AdInventory::default_inventory();
        assert!(
            inv.ads.iter().all(Ad::is_placeholder),
            "no third-party creative is built in"
        );
        let base = crate::domain::BucketName::parse("cuepoint-output").unwrap();
        inv.resolve_placeholders(&base).unwrap();
        assert_eq!(
            inv.ads[0].url,
            "s3://cuepoint-output/ads/AD-caribbean-15.mp4"
        );
        assert!(inv.ads.iter().all(|a| !a.is_placeholder()));
        // Absolute urls are left alone.
        let mut own =
            AdInventory::parse(r#"{"ads":[{"url":"https://ads.example/a.mp4"}]}"#).unwrap();
        own.resolve_placeholders(&base).unwrap();
        assert_eq!(own.ads[0].url, "https://ads.example/a.mp4");
    }
}
