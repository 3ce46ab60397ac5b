//! Fix-ups of the generated OpenAPI schema, applied to every node of the CRD's schema.
//!
//! schemars writes an `Option<enum>` as an `enum` that lists `null`; Helm and schema tools such as
//! kubeconform reject a `null` there, and the API server already reads `nullable: true`. Doc
//! comments keep their line breaks, which `kubectl explain` prints verbatim, breaking sentences in
//! the middle of its own wrapped lines.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool, JSONSchemaPropsOrStringArray,
};

/// Applies [`tidy_node`] to `schema` and every schema nested in it.
pub(crate) fn tidy(schema: &mut JSONSchemaProps) {
    tidy_node(schema);
    let maps = [&mut schema.properties, &mut schema.pattern_properties, &mut schema.definitions];
    for map in maps.into_iter().flatten() {
        map.values_mut().for_each(tidy);
    }
    for list in [&mut schema.all_of, &mut schema.any_of, &mut schema.one_of].into_iter().flatten() {
        list.iter_mut().for_each(tidy);
    }
    if let Some(not) = &mut schema.not {
        tidy(not);
    }
    match &mut schema.items {
        Some(JSONSchemaPropsOrArray::Schema(item)) => tidy(item),
        Some(JSONSchemaPropsOrArray::Schemas(items)) => items.iter_mut().for_each(tidy),
        None => {}
    }
    for nested in [&mut schema.additional_properties, &mut schema.additional_items].into_iter().flatten() {
        if let JSONSchemaPropsOrBool::Schema(nested) = nested {
            tidy(nested);
        }
    }
    for dependency in schema.dependencies.iter_mut().flat_map(|d| d.values_mut()) {
        if let JSONSchemaPropsOrStringArray::Schema(nested) = dependency {
            tidy(nested);
        }
    }
}

fn tidy_node(schema: &mut JSONSchemaProps) {
    if let Some(values) = &mut schema.enum_ {
        let before = values.len();
        values.retain(|v| !v.0.is_null());
        if values.len() != before {
            schema.nullable = Some(true);
        }
    }
    if let Some(description) = &mut schema.description {
        *description = join_paragraph_lines(description);
    }
}

/// Joins the lines of each paragraph with a space; blank lines still separate paragraphs.
fn join_paragraph_lines(text: &str) -> String {
    text.split("\n\n")
        .map(|paragraph| {
            paragraph.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
        })
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSON;
    use serde_json::json;

    #[test]
    fn paragraphs_are_joined_and_kept_apart() {
        assert_eq!(join_paragraph_lines("one\ntwo\n\nthree\n  four"), "one two\n\nthree four");
        assert_eq!(join_paragraph_lines("single line"), "single line");
    }

    #[test]
    fn null_leaves_the_enum_and_makes_the_field_nullable() {
        let mut schema =
            JSONSchemaProps { enum_: Some(vec![JSON(json!("A")), JSON(json!(null))]), ..Default::default() };
        tidy(&mut schema);
        assert_eq!(schema.enum_, Some(vec![JSON(json!("A"))]));
        assert_eq!(schema.nullable, Some(true));
    }

    #[test]
    fn nested_schemas_are_reached() {
        let leaf = JSONSchemaProps { description: Some("a\nb".into()), ..Default::default() };
        let mut schema = JSONSchemaProps {
            items: Some(JSONSchemaPropsOrArray::Schema(Box::new(JSONSchemaProps {
                additional_properties: Some(JSONSchemaPropsOrBool::Schema(Box::new(leaf))),
                ..Default::default()
            }))),
            ..Default::default()
        };
        tidy(&mut schema);
        let Some(JSONSchemaPropsOrArray::Schema(item)) = &schema.items else { unreachable!() };
        let Some(JSONSchemaPropsOrBool::Schema(leaf)) = &item.additional_properties else { unreachable!() };
        assert_eq!(leaf.description.as_deref(), Some("a b"));
    }
}
