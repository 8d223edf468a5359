//! Event type names, their parsing and suggestions, and sets of them.

use super::*;

#[test]
fn names_round_trip_and_keep_action_indexes() {
    for (i, t) in EventType::ALL.into_iter().enumerate() {
        assert_eq!(t.index(), i);
        assert_eq!(t.as_str(), NAMES[i]);
        assert_eq!(EventType::from_wire(t.as_str()), Some(t));
        assert_eq!(t.as_str().to_uppercase().parse::<EventType>().unwrap(), t);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<EventType>(&json).unwrap(), t);
        assert!(t.as_str().ends_with(t.local_name()));
    }
    for action in Action::ALL {
        assert_eq!(EventType::Zenlix(action).index(), action.index());
    }
    assert_eq!(
        EventType::from_wire("zenlix.aprrove"),
        Some(EventType::Zenlix(Action::Approve))
    );
    assert_eq!(EventType::from_wire("usedesk.nope"), None);
}

#[test]
fn misspelt_names_get_suggestions() {
    let cases = [
        (
            "aprove",
            "unknown action 'aprove' (did you mean 'approve'?)",
        ),
        (
            "comment_created",
            "unknown action 'comment_created' (did you mean 'usedesk.comment_created'?)",
        ),
        (
            "usedesk.coment_created",
            "unknown event type 'usedesk.coment_created' (did you mean \
             'usedesk.comment_created'?)",
        ),
        (
            "iqchannels.message_creatd",
            "unknown event type 'iqchannels.message_creatd' (did you mean \
             'iqchannels.message_created'?)",
        ),
        (
            "usedesk.message_created",
            "unknown event type 'usedesk.message_created' (did you mean \
             'iqchannels.message_created'?)",
        ),
        (
            "iqchannels.delete_messages",
            "unknown event type 'iqchannels.delete_messages' (did you mean \
             'iqchannels.delete-messages'?)",
        ),
        (
            "zenlix.aprove",
            "unknown event type 'zenlix.aprove' (did you mean 'approve'?)",
        ),
    ];
    for (input, message) in cases {
        let err = input.parse::<EventType>().unwrap_err();
        assert_eq!(err.to_string(), message, "{input}");
        assert_eq!(err.input(), input);
    }
    let far = "zendesk.ticket"
        .parse::<EventType>()
        .unwrap_err()
        .to_string();
    assert!(
        far.starts_with("unknown event type 'zendesk.ticket' (expected one of usedesk."),
        "{far}"
    );
    let far = "teleport".parse::<EventType>().unwrap_err().to_string();
    assert!(far.contains("expected one of create, refer"), "{far}");
}

#[test]
fn sets_parse_print_and_serialize() {
    let set: EventTypeSet = "create, usedesk.rating ,iqchannels.*".parse().unwrap();
    assert_eq!(set.len(), 1 + 1 + 9);
    assert_eq!(set.to_string(), "create,usedesk.rating,iqchannels.*");
    assert_eq!(set.actions().collect::<Vec<_>>(), [Action::Create]);
    assert_eq!(
        serde_json::to_string(&set).unwrap(),
        r#"["create","usedesk.rating","iqchannels.*"]"#
    );
    let back: EventTypeSet =
        serde_json::from_str(r#"["create","usedesk.rating","iqchannels.*"]"#).unwrap();
    assert_eq!(back, set);
    assert_eq!("*".parse::<EventTypeSet>().unwrap(), EventTypeSet::all());
    assert_eq!("".parse::<EventTypeSet>().unwrap(), EventTypeSet::empty());
    assert_eq!(EventTypeSet::all().to_string(), "*");
    assert_eq!(EventTypeSet::from(Action::ALL).to_string(), "zenlix.*");
    assert_eq!(
        EventTypeSet::from(Action::ALL),
        EventTypeSet::format(Format::Zenlix)
    );
    let err = serde_json::from_str::<EventTypeSet>(r#"["usedesk.ratng"]"#).unwrap_err();
    assert!(
        err.to_string().contains("did you mean 'usedesk.rating'"),
        "{err}"
    );
    let all = EventTypeSet::format(Format::Zenlix)
        .union(EventTypeSet::format(Format::Usedesk))
        .union(EventTypeSet::format(Format::IqChannels));
    assert!(all.is_all());
    assert_eq!(
        EventTypeSet::all()
            .difference(EventTypeSet::format(Format::Zenlix))
            .actions()
            .count(),
        0
    );
    let mut set = EventTypeSet::empty();
    set.insert(Action::Lock);
    assert!(set.contains(Action::Lock) && set.contains(EventType::Zenlix(Action::Lock)));
    set.remove(Action::Lock);
    assert!(set.is_empty());
    assert_eq!(EventTypeSet::all().without(Action::Edit.into()).len(), 24);
    assert_eq!(
        format!("{:?}", EventTypeSet::only(EventType::Zenlix(Action::Ok))),
        r#"{"ok"}"#
    );
}

#[test]
fn every_vendor_type_maps_to_an_action() {
    assert_eq!(
        EventType::Usedesk(usedesk::EventKind::Rating).action(),
        Action::Approve
    );
    assert_eq!(
        EventType::IqChannels(iqchannels::EventKind::ChatClosed).action(),
        Action::Ok
    );
    assert_eq!(
        EventType::IqChannels(iqchannels::EventKind::MessageCreated).content_type(),
        "application/json; charset=utf-8"
    );
}
