//! Image labels with MobileNetV2 (ImageNet-1k), in Rekognition's label shape.
//!
//! ImageNet's 1000 classes are leaves ("Golden Retriever", "Tabby"); Rekognition also names
//! the broader things ("Dog", "Mammal", "Animal", "Pet") and files labels under categories.
//! A small hierarchy over ImageNet's index ranges gives each class its parents and categories,
//! and a parent is itself a label whose confidence is the summed probability of its classes,
//! so a frame that is clearly a dog of an unclear breed is still labelled "Dog".

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::error::VisionError;
use crate::frame::Frame;
use crate::models::ModelId;
use crate::onnx::{run, softmax, Parsed, Plan};
use crate::shapes::{Label, NamedRef};

/// The class names, one per line in index order, next to the model.
pub const CLASSES_FILE: &str = "imagenet_classes.txt";
const SIDE: usize = 224;
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];
const CLASSES: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelOptions {
    /// Minimum confidence (0-100) of a label.
    pub min_confidence: f32,
    /// At most this many ImageNet classes per frame (broader labels come on top).
    pub max_classes: usize,
    /// A frame whose model input differs from the last one labelled by less than this mean
    /// absolute difference (0-255 per colour value) is a still picture: it gets the same labels
    /// without running the model again. Compression noise on a still stays well under 1;
    /// moving pictures are far above. 0 runs the model on every frame.
    pub still_difference: f32,
}

impl Default for LabelOptions {
    fn default() -> Self {
        LabelOptions {
            min_confidence: 30.0,
            max_classes: 5,
            still_difference: 1.0,
        }
    }
}

pub struct LabelClassifier {
    plan: Plan,
    names: Vec<String>,
    options: LabelOptions,
    /// The model input and labels of the last frame the model saw.
    last: Option<(Frame, Vec<Label>)>,
    /// Frames labelled without the model (still pictures).
    pub reused: usize,
}

impl LabelClassifier {
    /// Load the model and its class names from the model's directory in `models_dir`.
    pub fn load(
        onnx: &Path,
        classes: &Path,
        options: LabelOptions,
    ) -> Result<LabelClassifier, VisionError> {
        let bad = |cause: String| VisionError::BadCompanion {
            model: ModelId::MobileNetV2,
            path: classes.to_path_buf(),
            cause,
        };
        let text = std::fs::read_to_string(classes).map_err(|e| bad(e.to_string()))?;
        let names: Vec<String> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(readable_name)
            .collect();
        if names.len() != CLASSES {
            return Err(bad(format!(
                "{} class names, expected {CLASSES}",
                names.len()
            )));
        }
        let parsed = Parsed::load(ModelId::MobileNetV2, onnx)?;
        Ok(LabelClassifier {
            plan: parsed.plan(&[1, 3, SIDE, SIDE])?,
            names,
            options,
            last: None,
            reused: 0,
        })
    }

    /// The model and class names installed in `models_dir` (checked).
    pub fn from_models_dir(
        models_dir: &Path,
        options: LabelOptions,
    ) -> Result<LabelClassifier, VisionError> {
        let (onnx, classes) = crate::models::ModelFiles::installed(models_dir).labels?;
        Self::load(&onnx, &classes, options)
    }

    /// The probability of each class for `frame` (the centred square, as the model was trained).
    pub fn probabilities(&self, frame: &Frame) -> Result<Vec<f32>, VisionError> {
        self.square_probabilities(&frame.square_center(SIDE))
    }

    fn square_probabilities(&self, square: &Frame) -> Result<Vec<f32>, VisionError> {
        let plane = SIDE * SIDE;
        let mut input = vec![0f32; 3 * plane];
        for (i, p) in square.rgb.chunks_exact(3).enumerate() {
            for c in 0..3 {
                input[c * plane + i] = (p[c] as f32 / 255.0 - MEAN[c]) / STD[c];
            }
        }
        let outputs = run(ModelId::MobileNetV2, &self.plan, &[1, 3, SIDE, SIDE], input)?;
        match outputs.into_iter().next() {
            Some((_, mut logits)) if logits.len() == CLASSES => {
                softmax(&mut logits);
                Ok(logits)
            }
            other => Err(VisionError::Inference {
                model: ModelId::MobileNetV2,
                cause: format!(
                    "expected {CLASSES} class scores, got {}",
                    other.map_or(0, |o| o.1.len())
                ),
            }),
        }
    }

    /// The labels of `frame`, most confident first.
    pub fn labels(&self, frame: &Frame) -> Result<Vec<Label>, VisionError> {
        let probs = self.probabilities(frame)?;
        Ok(labels_from(&probs, &self.names, &self.options))
    }

    /// The labels of the next frame of a video: those of the last frame when the picture has
    /// not changed (see [`LabelOptions::still_difference`]), else the model's.
    pub fn next_labels(&mut self, frame: &Frame) -> Result<Vec<Label>, VisionError> {
        let square = frame.square_center(SIDE);
        if let Some((last, labels)) = &self.last {
            if mean_difference(last, &square) < self.options.still_difference {
                self.reused += 1;
                return Ok(labels.clone());
            }
        }
        let probs = self.square_probabilities(&square)?;
        let labels = labels_from(&probs, &self.names, &self.options);
        self.last = Some((square, labels.clone()));
        Ok(labels)
    }

    /// The readable name of class `index`.
    pub fn class_name(&self, index: usize) -> Option<&str> {
        self.names.get(index).map(String::as_str)
    }
}

/// Mean absolute difference of two same-sized pictures, per colour value (infinite when their
/// sizes differ).
fn mean_difference(a: &Frame, b: &Frame) -> f32 {
    if a.rgb.len() != b.rgb.len() || a.rgb.is_empty() {
        return f32::INFINITY;
    }
    let sum: u64 = a
        .rgb
        .iter()
        .zip(&b.rgb)
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f32 / a.rgb.len() as f32
}

/// Leaf and broader labels from class probabilities.
fn labels_from(probs: &[f32], names: &[String], o: &LabelOptions) -> Vec<Label> {
    let mut out = Vec::new();
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|a, b| probs[*b].total_cmp(&probs[*a]));
    for &i in order.iter().take(o.max_classes) {
        let confidence = probs[i] * 100.0;
        if confidence < o.min_confidence {
            break;
        }
        let (parents, categories) = class_ancestry(i);
        out.push(Label {
            name: names[i].clone(),
            confidence,
            parents: refs(parents),
            categories: refs(categories),
        });
    }
    let mut groups: BTreeMap<&'static str, f32> = BTreeMap::new();
    for (i, p) in probs.iter().enumerate() {
        for g in class_ancestry(i).0 {
            *groups.entry(g).or_default() += p;
        }
    }
    for (g, p) in groups {
        let confidence = (p * 100.0).min(100.0);
        if confidence >= o.min_confidence && !out.iter().any(|l| l.name == g) {
            let (parents, categories) = group_ancestry(g);
            out.push(Label {
                name: g.into(),
                confidence,
                parents: refs(parents),
                categories: refs(categories),
            });
        }
    }
    out.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    out
}

fn refs(names: BTreeSet<&'static str>) -> Vec<NamedRef> {
    names
        .into_iter()
        .map(|n| NamedRef { name: n.into() })
        .collect()
}

/// "n02123045 tabby, tabby cat" or "tabby, tabby cat" -> "Tabby".
fn readable_name(line: &str) -> String {
    let line = line.trim();
    let line = match line.split_once(' ') {
        Some((id, rest))
            if id.len() == 9
                && id.starts_with('n')
                && id[1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            rest
        }
        _ => line,
    };
    let first = line.split(',').next().unwrap_or(line).trim();
    first
        .split(' ')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect::<String>(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Broader labels: name, parents (nearest first), categories.
const GROUPS: &[(&str, &[&str], &[&str])] = &[
    ("Animal", &[], &["Animals and Pets"]),
    ("Pet", &["Animal"], &["Animals and Pets"]),
    ("Wildlife", &["Animal"], &["Animals and Pets"]),
    ("Sea Life", &["Animal"], &["Animals and Pets"]),
    ("Mammal", &["Animal"], &["Animals and Pets"]),
    ("Dog", &["Canine", "Pet"], &["Animals and Pets"]),
    ("Canine", &["Mammal"], &["Animals and Pets"]),
    ("Cat", &["Mammal", "Pet"], &["Animals and Pets"]),
    ("Big Cat", &["Mammal", "Wildlife"], &["Animals and Pets"]),
    ("Bear", &["Mammal", "Wildlife"], &["Animals and Pets"]),
    ("Primate", &["Mammal", "Wildlife"], &["Animals and Pets"]),
    ("Elephant", &["Mammal", "Wildlife"], &["Animals and Pets"]),
    ("Rodent", &["Mammal"], &["Animals and Pets"]),
    ("Rabbit", &["Mammal"], &["Animals and Pets"]),
    ("Livestock", &["Mammal"], &["Animals and Pets"]),
    ("Bird", &["Animal"], &["Animals and Pets"]),
    ("Fish", &["Sea Life"], &["Animals and Pets"]),
    ("Reptile", &["Animal"], &["Animals and Pets"]),
    ("Amphibian", &["Animal"], &["Animals and Pets"]),
    ("Invertebrate", &["Animal"], &["Animals and Pets"]),
    ("Insect", &["Invertebrate"], &["Animals and Pets"]),
    ("Transportation", &[], &["Vehicles and Automotive"]),
    ("Vehicle", &["Transportation"], &["Vehicles and Automotive"]),
    ("Car", &["Vehicle"], &["Vehicles and Automotive"]),
    ("Truck", &["Vehicle"], &["Vehicles and Automotive"]),
    ("Bus", &["Vehicle"], &["Vehicles and Automotive"]),
    ("Train", &["Vehicle"], &["Vehicles and Automotive"]),
    ("Boat", &["Vehicle"], &["Vehicles and Automotive"]),
    ("Aircraft", &["Vehicle"], &["Vehicles and Automotive"]),
    ("Bicycle", &["Vehicle"], &["Vehicles and Automotive"]),
    ("Motorcycle", &["Vehicle"], &["Vehicles and Automotive"]),
    ("Food", &[], &["Food and Beverage"]),
    ("Meal", &["Food"], &["Food and Beverage"]),
    ("Fruit", &["Food", "Plant"], &["Food and Beverage"]),
    ("Vegetable", &["Food", "Plant"], &["Food and Beverage"]),
    ("Beverage", &[], &["Food and Beverage"]),
    ("Plant", &[], &["Plants and Flowers"]),
    ("Flower", &["Plant"], &["Plants and Flowers"]),
    ("Fungus", &["Plant"], &["Plants and Flowers"]),
    ("Nature", &["Outdoors"], &["Nature and Outdoors"]),
    ("Outdoors", &[], &["Nature and Outdoors"]),
    ("Person", &[], &["Person Description"]),
    ("Electronics", &[], &["Technology and Computing"]),
    ("Computer", &["Electronics"], &["Technology and Computing"]),
    ("Furniture", &[], &["Home and Indoors"]),
    ("Musical Instrument", &[], &["Hobbies and Interests"]),
    ("Clothing", &[], &["Apparel and Accessories"]),
    ("Weapon", &[], &["Weapons and Military"]),
    ("Building", &[], &["Buildings and Architecture"]),
    ("Sport", &[], &["Sports"]),
];

/// ImageNet index ranges (inclusive) of each broader label's classes.
const MEMBERS: &[(&str, &[(u16, u16)])] = &[
    ("Fish", &[(0, 6), (389, 397)]),
    ("Bird", &[(7, 24), (80, 100), (127, 146)]),
    ("Amphibian", &[(25, 32)]),
    ("Reptile", &[(33, 68)]),
    ("Invertebrate", &[(69, 79), (107, 126), (327, 329)]),
    (
        "Sea Life",
        &[(107, 109), (112, 112), (115, 125), (147, 150), (327, 329)],
    ),
    (
        "Mammal",
        &[
            (101, 106),
            (147, 150),
            (276, 276),
            (298, 299),
            (340, 340),
            (347, 364),
            (387, 388),
        ],
    ),
    (
        "Wildlife",
        &[
            (101, 106),
            (340, 340),
            (342, 344),
            (347, 353),
            (356, 364),
            (387, 388),
        ],
    ),
    ("Dog", &[(151, 268)]),
    ("Canine", &[(269, 275), (277, 280)]),
    ("Cat", &[(281, 285)]),
    ("Big Cat", &[(286, 293)]),
    ("Bear", &[(294, 297)]),
    ("Insect", &[(300, 326)]),
    ("Rabbit", &[(330, 332)]),
    ("Rodent", &[(333, 338)]),
    (
        "Livestock",
        &[(339, 339), (341, 341), (345, 346), (348, 348), (354, 355)],
    ),
    ("Primate", &[(365, 384)]),
    ("Elephant", &[(385, 386)]),
    (
        "Car",
        &[
            (407, 407),
            (436, 436),
            (468, 468),
            (511, 511),
            (609, 609),
            (627, 627),
            (656, 656),
            (661, 661),
            (717, 717),
            (751, 751),
            (817, 817),
        ],
    ),
    (
        "Truck",
        &[
            (555, 555),
            (569, 569),
            (675, 675),
            (734, 734),
            (864, 864),
            (867, 867),
        ],
    ),
    ("Bus", &[(654, 654), (779, 779), (874, 874)]),
    (
        "Train",
        &[
            (466, 466),
            (547, 547),
            (565, 565),
            (705, 705),
            (820, 820),
            (829, 829),
        ],
    ),
    (
        "Boat",
        &[
            (403, 403),
            (472, 472),
            (484, 484),
            (510, 510),
            (554, 554),
            (576, 576),
            (625, 625),
            (628, 628),
            (724, 724),
            (780, 780),
            (814, 814),
            (833, 833),
            (871, 871),
            (914, 914),
        ],
    ),
    ("Aircraft", &[(404, 405), (895, 895)]),
    ("Bicycle", &[(444, 444), (671, 671), (870, 870), (880, 880)]),
    ("Motorcycle", &[(665, 665), (670, 670)]),
    (
        "Vehicle",
        &[
            (573, 573),
            (575, 575),
            (595, 595),
            (757, 757),
            (803, 803),
            (847, 847),
            (866, 866),
        ],
    ),
    ("Meal", &[(923, 935), (959, 965)]),
    ("Vegetable", &[(936, 947)]),
    ("Fruit", &[(948, 957)]),
    (
        "Beverage",
        &[
            (440, 440),
            (504, 504),
            (737, 737),
            (898, 898),
            (901, 901),
            (907, 907),
            (966, 967),
            (969, 969),
        ],
    ),
    ("Nature", &[(970, 970), (972, 980)]),
    ("Person", &[(981, 983)]),
    ("Flower", &[(985, 986)]),
    ("Plant", &[(984, 984), (987, 990), (998, 998)]),
    ("Fungus", &[(991, 997)]),
    (
        "Computer",
        &[
            (508, 508),
            (527, 527),
            (590, 590),
            (620, 620),
            (664, 664),
            (673, 673),
            (681, 681),
            (782, 782),
        ],
    ),
    (
        "Electronics",
        &[
            (482, 482),
            (487, 487),
            (528, 528),
            (605, 605),
            (632, 632),
            (707, 707),
            (713, 713),
            (732, 732),
            (742, 742),
            (745, 745),
            (754, 754),
            (759, 759),
            (761, 761),
            (848, 848),
            (851, 851),
        ],
    ),
    (
        "Furniture",
        &[
            (423, 423),
            (453, 453),
            (492, 492),
            (495, 495),
            (516, 516),
            (520, 520),
            (526, 526),
            (532, 532),
            (548, 548),
            (553, 553),
            (559, 559),
            (564, 564),
            (648, 648),
            (703, 703),
            (736, 736),
            (765, 765),
            (831, 831),
            (857, 857),
            (894, 894),
        ],
    ),
    (
        "Musical Instrument",
        &[
            (401, 402),
            (420, 420),
            (432, 432),
            (486, 486),
            (494, 494),
            (513, 513),
            (541, 541),
            (546, 546),
            (558, 558),
            (566, 566),
            (577, 577),
            (579, 579),
            (593, 594),
            (641, 642),
            (683, 684),
            (687, 687),
            (699, 699),
            (776, 776),
            (822, 822),
            (875, 875),
            (881, 881),
            (889, 889),
        ],
    ),
    (
        "Clothing",
        &[
            (399, 400),
            (411, 411),
            (439, 439),
            (445, 445),
            (451, 452),
            (457, 457),
            (459, 459),
            (474, 474),
            (501, 502),
            (514, 515),
            (552, 552),
            (568, 568),
            (601, 601),
            (608, 608),
            (610, 610),
            (614, 614),
            (617, 617),
            (630, 630),
            (638, 639),
            (652, 652),
            (655, 655),
            (667, 667),
            (689, 689),
            (697, 697),
            (735, 735),
            (770, 770),
            (774, 775),
            (793, 793),
            (808, 808),
            (834, 834),
            (841, 842),
            (869, 869),
            (903, 903),
        ],
    ),
    (
        "Weapon",
        &[
            (413, 413),
            (456, 456),
            (471, 471),
            (657, 657),
            (744, 744),
            (763, 764),
            (847, 847),
        ],
    ),
    (
        "Building",
        &[
            (410, 410),
            (415, 415),
            (424, 425),
            (449, 449),
            (454, 454),
            (467, 467),
            (483, 483),
            (497, 498),
            (509, 509),
            (580, 580),
            (582, 582),
            (660, 660),
            (663, 663),
            (668, 668),
            (698, 698),
            (727, 727),
            (762, 762),
            (832, 832),
            (858, 858),
            (860, 860),
            (865, 865),
        ],
    ),
    (
        "Sport",
        &[
            (429, 430),
            (522, 522),
            (574, 574),
            (722, 722),
            (747, 747),
            (768, 768),
            (795, 795),
            (805, 805),
            (852, 852),
            (890, 890),
            (981, 981),
        ],
    ),
];

fn group(
    name: &str,
) -> Option<&'static (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
)> {
    GROUPS.iter().find(|g| g.0 == name)
}

/// A broader label's ancestors and categories (its own categories included).
fn group_ancestry(name: &str) -> (BTreeSet<&'static str>, BTreeSet<&'static str>) {
    let mut parents = BTreeSet::new();
    let mut categories = BTreeSet::new();
    let mut todo: Vec<&str> = vec![name];
    while let Some(n) = todo.pop() {
        if let Some((_, ps, cs)) = group(n) {
            categories.extend(cs.iter().copied());
            for p in ps.iter() {
                if parents.insert(*p) {
                    todo.push(p);
                }
            }
        }
    }
    (parents, categories)
}

/// A class's parents (its broader labels and their ancestors) and categories.
fn class_ancestry(index: usize) -> (BTreeSet<&'static str>, BTreeSet<&'static str>) {
    let mut parents = BTreeSet::new();
    let mut categories = BTreeSet::new();
    for (g, ranges) in MEMBERS {
        if ranges
            .iter()
            .any(|(a, b)| (*a as usize..=*b as usize).contains(&index))
        {
            let (ps, cs) = group_ancestry(g);
            let name = group(g).map(|x| x.0).unwrap_or("");
            parents.insert(name);
            parents.extend(ps);
            categories.extend(cs);
        }
    }
    parents.remove("");
    (parents, categories)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_difference_is_per_colour_value() {
        let grey = Frame::filled(4, 4, [100, 100, 100]);
        assert_eq!(mean_difference(&grey, &grey), 0.0);
        let lighter = Frame::filled(4, 4, [102, 100, 100]);
        assert!((mean_difference(&grey, &lighter) - 2.0 / 3.0).abs() < 1e-6);
        // One pixel of sixteen changing fully is a moving picture, not noise.
        let mut spot = grey.clone();
        spot.rgb[..3].copy_from_slice(&[255, 255, 255]);
        assert!(mean_difference(&grey, &spot) > 9.0);
        assert_eq!(
            mean_difference(&grey, &Frame::filled(2, 2, [100, 100, 100])),
            f32::INFINITY
        );
    }

    #[test]
    fn names_are_readable() {
        assert_eq!(readable_name("n02123045 tabby, tabby cat"), "Tabby");
        assert_eq!(readable_name("golden retriever"), "Golden Retriever");
        assert_eq!(
            readable_name("German short-haired pointer\n"),
            "German Short-haired Pointer"
        );
    }

    #[test]
    fn every_member_group_is_defined() {
        for (g, ranges) in MEMBERS {
            assert!(group(g).is_some(), "{g}");
            assert!(
                ranges
                    .iter()
                    .all(|(a, b)| a <= b && (*b as usize) < CLASSES),
                "{g}"
            );
        }
        for (_, ps, _) in GROUPS {
            assert!(ps.iter().all(|p| group(p).is_some()));
        }
    }

    #[test]
    fn dog_breeds_are_dogs_animals_and_pets() {
        let (parents, categories) = class_ancestry(207); // golden retriever
        for p in ["Dog", "Canine", "Mammal", "Animal", "Pet"] {
            assert!(parents.contains(p), "{parents:?}");
        }
        assert_eq!(
            categories.into_iter().collect::<Vec<_>>(),
            ["Animals and Pets"]
        );
        let (parents, _) = class_ancestry(817); // sports car
        assert!(parents.contains("Car") && parents.contains("Transportation"));
    }

    #[test]
    fn broader_labels_sum_their_classes() {
        let names: Vec<String> = (0..CLASSES).map(|i| format!("Class {i}")).collect();
        let mut probs = vec![0.0; CLASSES];
        // Three cat classes, none sure on its own.
        probs[281] = 0.3;
        probs[282] = 0.25;
        probs[285] = 0.25;
        probs[0] = 0.2;
        let labels = labels_from(&probs, &names, &LabelOptions::default());
        let names: Vec<&str> = labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names[..3], ["Animal", "Cat", "Mammal"], "{names:?}");
        assert!(names.contains(&"Class 281") && names.contains(&"Pet"));
        assert!(!names.contains(&"Class 0"));
        let cat = &labels[1];
        assert!((cat.confidence - 80.0).abs() < 1e-3);
        assert!(cat.parents.iter().any(|p| p.name == "Mammal"));
    }
}
