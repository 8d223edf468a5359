//! The objects of iQChannels' webhooks: the chat event, and the channels, chats, messages,
//! clients, projects, users and files it refers to in `Rels`, with the vendor's enumerations.

use serde_json::{Number, Value};

use super::{EventType, Millis};
use crate::formats::Token;
use crate::wire::{wire_enum, wire_object};
wire_enum! {
    /// Who caused an event (`ChatEvent.Actor`) or wrote a message (`ChatMessages[].Author`).
    #[derive(Default)]
    pub enum Actor {
        /// `client`
        #[default]
        Client => "client",
        /// `user`: an operator.
        User => "user",
        /// `system`
        System => "system",
        /// The empty string: anonymous.
        Anonymous => "",
    }
}

wire_enum! {
    /// What a message carries (`ChatMessages[].Payload`).
    #[derive(Default)]
    pub enum PayloadType {
        /// `text`
        #[default]
        Text => "text",
        /// `file`: see `FileId`.
        File => "file",
        /// `notice`
        Notice => "notice",
        /// `rating`
        Rating => "rating",
        /// `single-choice`: bot buttons.
        SingleChoice => "single-choice",
        /// `card`
        Card => "card",
        /// `carousel`
        Carousel => "carousel",
    }
}

wire_enum! {
    /// The medium of a channel (`Channels[].Type`).
    #[derive(Default)]
    pub enum ChannelType {
        /// `iqchat`: the web or mobile chat widget.
        #[default]
        IqChat => "iqchat",
        /// `vk`
        Vk => "vk",
        /// `facebook`
        Facebook => "facebook",
        /// `telegram`
        Telegram => "telegram",
        /// `infobip`
        Infobip => "infobip",
        /// `edna`
        Edna => "edna",
        /// `viber`
        Viber => "viber",
        /// `email`
        Email => "email",
    }
}

wire_enum! {
    /// How a client is identified (`Clients[].Type`).
    #[derive(Default)]
    pub enum ClientType {
        /// `channel`: came from a messenger channel.
        #[default]
        Channel => "channel",
        /// `crm`: authenticated through the CRM integration.
        Crm => "crm",
    }
}

wire_object! {
    /// The event (`ChatEvent`).
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct ChatEvent, expecting "a ChatEvent object {Id, Type, ChatId, …}" {
        /// Event id; 0 for transitive events such as `typing`.
        pub id: i64 => "Id", plain, required;
        /// What happened.
        pub kind: EventType => "Type", plain, required;
        /// The chat: the ordering key (see [`Rels::chats`]).
        pub chat_id: i64 => "ChatId", plain, required;
        /// The message concerned, if any.
        pub message_id: Option<i64> => "MessageId", plain, default;
        /// Who caused it.
        pub actor: Actor => "Actor", plain, default;
        /// The client who acted, or the chat's client.
        pub client_id: Option<i64> => "ClientId", plain, default;
        /// The operator who acted.
        pub user_id: Option<i64> => "UserId", plain, default;
        /// When.
        pub created_at: Millis => "CreatedAt", plain, default;
        /// Whether the event is not stored (and has no real id).
        pub transitive: bool => "Transitive", plain, default;
        /// Messages carried by the event (newer API; `null` in the example).
        pub messages: Option<Vec<ChatMessage>> => "Messages", plain, default;
    }
}

wire_object! {
    /// A channel (`Rels.Channels[]`).
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct Channel, expecting "a channel object {Id, ProjectId, Type, …}" {
        /// Channel id.
        pub id: i64 => "Id", plain, required;
        /// The owning project.
        pub project_id: i64 => "ProjectId", plain, default;
        /// The medium.
        pub kind: ChannelType => "Type", plain, default;
        /// Machine name.
        pub name: String => "Name", plain, default;
        /// Title.
        pub title: String => "Title", plain, default;
        /// Description.
        pub description: String => "Description", plain, default;
        /// Whether voice messages are on.
        pub audio_messages_enabled: bool => "AudioMessagesEnabled", plain, default;
        /// Who may send voice messages (`none`, …).
        pub audio_messages_enabled_for: String => "AudioMessagesEnabledFor", plain, default;
        /// Deleted flag.
        pub deleted: bool => "Deleted", plain, default;
        /// Clients of the channel.
        pub total_clients: i64 => "TotalClients", plain, default;
        /// Tickets ever opened in the channel.
        pub total_tickets: i64 => "TotalTickets", plain, default;
        /// Open tickets; a denormalized counter that can be negative.
        pub total_open_tickets: i64 => "TotalOpenTickets", plain, default;
        /// Creation time.
        pub created_at: Millis => "CreatedAt", plain, default;
        /// Update time.
        pub updated_at: Millis => "UpdatedAt", plain, default;
        /// Settings of an `iqchat` channel, kept as JSON.
        pub iq_chat: Value => "IQChat", plain, default;
        /// Settings of a `vk` channel, kept as JSON.
        pub vk: Value => "VK", plain, default;
    }
}

wire_object! {
    /// A chat (`Rels.Chats[]`).
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct Chat, expecting "a chat object {Id, ProjectId, ClientId, …}" {
        /// Chat id.
        pub id: i64 => "Id", plain, required;
        /// Chat type (`regular`, …).
        pub kind: String => "Type", plain, default;
        /// The project.
        pub project_id: i64 => "ProjectId", plain, default;
        /// The chat's client.
        pub client_id: i64 => "ClientId", plain, default;
        /// The channel.
        pub channel_id: i64 => "ChannelId", plain, default;
        /// The chat's current ticket.
        pub ticket_id: i64 => "TicketId", plain, default;
        /// The last event of the chat.
        pub event_id: Option<i64> => "EventId", plain, default;
        /// Messages the client has not read.
        pub client_unread: i64 => "ClientUnread", plain, default;
        /// The assigned operator.
        pub user_id: Option<i64> => "UserId", plain, default;
        /// Creation time.
        pub created_at: Millis => "CreatedAt", plain, default;
        /// Last change.
        pub changed_at: Millis => "ChangedAt", plain, default;
        /// System chat marker, kept as JSON.
        pub system_chat: Value => "SystemChat", plain, default;
        /// Deleted flag.
        pub deleted: Option<bool> => "Deleted", plain, default;
        /// Deletion time.
        pub deleted_at: Option<Millis> => "DeletedAt", plain, default;
    }
}

wire_object! {
    /// A message (`Rels.ChatMessages[]`, `ChatEvent.Messages[]`).
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct ChatMessage, expecting "a chat message object {Id, ChatId, Author, Payload, …}" {
        /// Message id.
        pub id: i64 => "Id", plain, required;
        /// The quoted message.
        pub reply_to_message_id: Option<i64> => "ReplyToMessageId", plain, default;
        /// The chat.
        pub chat_id: i64 => "ChatId", plain, default;
        /// The sender's de-duplication id (usually its clock in ms).
        pub local_id: i64 => "LocalId", plain, default;
        /// The event that created the message.
        pub event_id: Option<i64> => "EventId", plain, default;
        /// The mirrored message in the ticket.
        pub ticket_message_id: Option<i64> => "TicketMessageId", plain, default;
        /// The mailing the message came from.
        pub mailing_message_id: Option<i64> => "MailingMessageId", plain, default;
        /// A showcase product attached.
        pub product_id: Option<i64> => "ProductId", plain, default;
        /// State of a product offer, kept as JSON.
        pub product_offer_state: Value => "ProductOfferState", plain, default;
        /// Who wrote it.
        pub author: Actor => "Author", plain, default;
        /// The authoring client.
        pub client_id: Option<i64> => "ClientId", plain, default;
        /// The authoring operator.
        pub user_id: Option<i64> => "UserId", plain, default;
        /// What it carries.
        pub payload: PayloadType => "Payload", plain, default;
        /// Text; empty for other payloads.
        pub text: String => "Text", plain, default;
        /// The attached file (see [`Rels::files`]).
        pub file_id: Option<String> => "FileId", plain, default;
        /// Delivered.
        pub received: bool => "Received", plain, default;
        /// Read.
        pub read: bool => "Read", plain, default;
        /// Listened (voice messages).
        pub listened: Option<bool> => "Listened", plain, default;
        /// Sent as a push notification.
        pub pushed: bool => "Pushed", plain, default;
        /// Creation time.
        pub created_at: Millis => "CreatedAt", plain, default;
        /// Delivery time.
        pub received_at: Option<Millis> => "ReceivedAt", plain, default;
        /// Read time.
        pub read_at: Option<Millis> => "ReadAt", plain, default;
        /// Listen time.
        pub listened_at: Option<Millis> => "ListenedAt", plain, default;
        /// The ticket.
        pub ticket_id: Option<i64> => "TicketId", plain, default;
        /// Bot buttons shown as a drop-down.
        pub is_drop_down: Option<bool> => "IsDropDown", plain, default;
        /// Raw Botpress payload.
        pub botpress_payload: Option<String> => "BotpressPayload", plain, default;
        /// Deleted flag.
        pub deleted: bool => "Deleted", plain, default;
        /// Deletion time.
        pub deleted_at: Option<Millis> => "DeletedAt", plain, default;
        /// Direct URL of the attached file.
        pub file_url: Option<String> => "FileURL", plain, default;
        /// "Sent by the requester"; always false in webhooks.
        pub my: bool => "My", plain, default;
        /// Marker that the message opens a system chat, kept as JSON.
        pub open_system_chat: Value => "OpenSystemChat", plain, default;
        /// Bot quick-reply buttons, kept as JSON.
        pub single_choices: Vec<Value> => "SingleChoices", plain, default;
        /// Bot action buttons, kept as JSON.
        pub actions: Value => "Actions", plain, default;
        /// An embedded product, kept as JSON.
        pub product: Value => "Product", plain, default;
        /// Extra client information.
        pub client_info: String => "ClientInfo", plain, default;
    }
}

wire_object! {
    /// A custom field of a client (`Clients[].Details.Fields[]`).
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct Field, expecting "a client field object {Id, ClientId, Name, Value, …}" {
        /// Field id.
        pub id: i64 => "Id", plain, required;
        /// The client.
        pub client_id: i64 => "ClientId", plain, default;
        /// Name.
        pub name: String => "Name", plain, default;
        /// Value.
        pub value: String => "Value", plain, default;
        /// Deleted flag.
        pub deleted: bool => "Deleted", plain, default;
        /// Creation time.
        pub created_at: Millis => "CreatedAt", plain, default;
        /// Update time.
        pub updated_at: Millis => "UpdatedAt", plain, default;
    }
}

wire_object! {
    /// A client's profile, mostly from the CRM (`Clients[].Details`).
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct Details, expecting "a client details object {ClientId, CRMURL, FirstName, …}" {
        /// The client; 0 when no profile exists yet.
        pub client_id: i64 => "ClientId", plain, default;
        /// The client's card in the CRM.
        pub crm_url: Option<String> => "CRMURL", plain, default;
        /// First name.
        pub first_name: Option<String> => "FirstName", plain, default;
        /// Middle name (patronymic).
        pub middle_name: Option<String> => "MiddleName", plain, default;
        /// Last name.
        pub last_name: Option<String> => "LastName", plain, default;
        /// Sex, free text.
        pub sex: Option<String> => "Sex", plain, default;
        /// Birthday, `DD.MM.YYYY`.
        pub birthday: Option<String> => "Birthday", plain, default;
        /// Mobile phone, free format.
        pub cellphone: Option<String> => "Cellphone", plain, default;
        /// E-mail.
        pub email: Option<String> => "Email", plain, default;
        /// Russian taxpayer id.
        pub inn: Option<String> => "INN", plain, default;
        /// External reference in the CRM.
        pub ext_ref: Option<String> => "ExtRef", plain, default;
        /// Customer card reference.
        pub card_ref: Option<String> => "CardRef", plain, default;
        /// CRM token: a credential, kept out of logs ([`Token`]'s `Debug` hides it).
        pub token: Option<Token> => "Token", plain, default;
        /// Servicing branch id.
        pub branch_id: Option<String> => "BranchId", plain, default;
        /// Branch name.
        pub branch_name: Option<String> => "BranchName", plain, default;
        /// Branch external reference.
        pub branch_ext_ref: Option<String> => "BranchExtRef", plain, default;
        /// Branch bank code (BIK).
        pub branch_bik: Option<String> => "BranchBik", plain, default;
        /// Creation time; [`Millis::GO_ZERO`] when not set.
        pub created_at: Millis => "CreatedAt", plain, default;
        /// Update time; [`Millis::GO_ZERO`] when not set.
        pub updated_at: Millis => "UpdatedAt", plain, default;
        /// Custom fields.
        pub fields: Vec<Field> => "Fields", plain, default;
    }
}

wire_object! {
    /// A client (`Rels.Clients[]`).
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct Client, expecting "a client object {Id, ProjectId, Type, Name, …}" {
        /// Client id.
        pub id: i64 => "Id", plain, required;
        /// The project.
        pub project_id: i64 => "ProjectId", plain, default;
        /// Parent client, for merged clients.
        pub parent_id: Option<i64> => "ParentId", plain, default;
        /// The personal manager (operator).
        pub personal_manager_id: Option<i64> => "PersonalManagerId", plain, default;
        /// How the client is identified.
        pub kind: ClientType => "Type", plain, default;
        /// Display name.
        pub name: String => "Name", plain, default;
        /// Short name.
        pub short_name: String => "ShortName", plain, default;
        /// Online now.
        pub online: bool => "Online", plain, default;
        /// The CRM integration.
        pub crm_id: Option<i64> => "CRMId", plain, default;
        /// The client's id in that CRM.
        pub crm_client_id: Option<String> => "CRMClientId", plain, default;
        /// The channel the client came from.
        pub channel_id: Option<i64> => "ChannelId", plain, default;
        /// Telegram user id.
        pub telegram_id: Option<i64> => "TelegramId", plain, default;
        /// Facebook user id (a string or a number), kept as JSON.
        pub facebook_id: Value => "FacebookId", plain, default;
        /// Infobip contact id.
        pub infobip_id: Option<String> => "InfobipId", plain, default;
        /// Edna contact id.
        pub edna_id: Option<String> => "EdnaId", plain, default;
        /// VK user id.
        pub vk_id: Option<i64> => "VKId", plain, default;
        /// Viber user id.
        pub viber_id: Option<String> => "ViberId", plain, default;
        /// Colour marker (`green`, …).
        pub marker_type: String => "MarkerType", plain, default;
        /// Label of the marker.
        pub marker_name: String => "MarkerName", plain, default;
        /// Tickets of the client.
        pub total_tickets: i64 => "TotalTickets", plain, default;
        /// Open tickets of the client.
        pub total_open_tickets: i64 => "TotalOpenTickets", plain, default;
        /// Average rating the client gave.
        pub avg_rating: Option<Number> => "AvgRating", plain, default;
        /// Creation time.
        pub created_at: Millis => "CreatedAt", plain, default;
        /// Update time.
        pub updated_at: Millis => "UpdatedAt", plain, default;
        /// Last seen online.
        pub seen_at: Option<Millis> => "SeenAt", plain, default;
        /// Last message.
        pub messaged_at: Option<Millis> => "MessagedAt", plain, default;
        /// Client group name.
        pub group_name: String => "GroupName", plain, default;
        /// Priority.
        pub priority: i64 => "Priority", plain, default;
        /// Last operator comment about the client.
        pub last_comment: Option<String> => "LastComment", plain, default;
        /// Profile.
        pub details: Details => "Details", plain, default;
        /// VK profile, kept as JSON.
        pub vk: Value => "VK", plain, default;
    }
}

wire_object! {
    /// A project (`Rels.Projects[]`).
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct Project, expecting "a project object {Id, Name, …}" {
        /// Project id.
        pub id: i64 => "Id", plain, required;
        /// Name.
        pub name: String => "Name", plain, default;
        /// URL slug.
        pub slug: String => "Slug", plain, default;
        /// Description.
        pub description: String => "Description", plain, default;
        /// State (`active`, …).
        pub state: String => "State", plain, default;
        /// Tickets.
        pub total_tickets: i64 => "TotalTickets", plain, default;
        /// Open tickets.
        pub total_open_tickets: i64 => "TotalOpenTickets", plain, default;
        /// Assigned tickets.
        pub total_assigned_tickets: i64 => "TotalAssignedTickets", plain, default;
        /// Creation time.
        pub created_at: Millis => "CreatedAt", plain, default;
        /// Update time.
        pub updated_at: Millis => "UpdatedAt", plain, default;
        /// Archive time.
        pub archived_at: Option<Millis> => "ArchivedAt", plain, default;
        /// Deletion time.
        pub deleted_at: Option<Millis> => "DeletedAt", plain, default;
        /// Restore time.
        pub restored_at: Option<Millis> => "RestoredAt", plain, default;
        /// Clients.
        pub total_client_count: i64 => "TotalClientCount", plain, default;
        /// Operators.
        pub total_agent_count: i64 => "TotalAgentCount", plain, default;
        /// Channels.
        pub total_channel_count: i64 => "TotalChannelCount", plain, default;
        /// The server licence, kept as JSON.
        pub license: Value => "License", plain, default;
        /// Options, kept as JSON.
        pub options: Value => "Options", plain, default;
        /// Permissions, kept as JSON (`null` in webhooks).
        pub permissions: Value => "Permissions", plain, default;
    }
}

wire_object! {
    /// An operator (`Rels.Users[]`).
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct User, expecting "a user object {Id, Name, …}" {
        /// Operator id.
        pub id: i64 => "Id", plain, required;
        /// Principal type (`user`).
        pub kind: String => "Type", plain, default;
        /// Full name.
        pub name: String => "Name", plain, default;
        /// Alias shown instead of the name.
        pub pseudonym: String => "Pseudonym", plain, default;
        /// Department.
        pub department: String => "Department", plain, default;
        /// Login e-mail.
        pub email: String => "Email", plain, default;
        /// Job title.
        pub position: String => "Position", plain, default;
        /// Role.
        pub role_id: i64 => "RoleId", plain, default;
        /// Avatar file id.
        pub avatar_id: Option<String> => "AvatarId", plain, default;
        /// Online now.
        pub online: bool => "Online", plain, default;
        /// Account active.
        pub active: bool => "Active", plain, default;
        /// Corporate chat enabled.
        pub corporate_chat_enabled: bool => "CorporateChatEnabled", plain, default;
        /// Marked busy.
        pub busy: bool => "Busy", plain, default;
        /// Account deleted.
        pub deleted: bool => "Deleted", plain, default;
        /// Tickets assigned (older API; newer ones send `Totals`).
        pub total_assigned_tickets: i64 => "TotalAssignedTickets", plain, default;
        /// Creation time.
        pub created_at: Millis => "CreatedAt", plain, default;
        /// Update time.
        pub updated_at: Millis => "UpdatedAt", plain, default;
        /// Last seen online.
        pub last_seen_at: Option<Millis> => "LastSeenAt", plain, default;
        /// Last activity.
        pub last_active_at: Option<Millis> => "LastActiveAt", plain, default;
        /// Last message sent.
        pub last_message_at: Option<Millis> => "LastMessageAt", plain, default;
        /// Last ticket assignment.
        pub assigned_at: Option<Millis> => "AssignedAt", plain, default;
        /// Name shown to clients.
        pub display_name: String => "DisplayName", plain, default;
        /// Permissions, kept as JSON.
        pub permissions: Value => "Permissions", plain, default;
        /// Workload counters, kept as JSON.
        pub totals: Value => "Totals", plain, default;
        /// Operator rating.
        pub rating: Option<Number> => "Rating", plain, default;
        /// Login name.
        pub login: Option<String> => "Login", plain, default;
    }
}

wire_object! {
    /// A file (`Rels.Files[]`).
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct File, expecting "a file object {Id, Type, Name, …}" {
        /// File id: a UUID and the original extension.
        pub id: String => "Id", plain, required;
        /// `file` or `image`.
        pub kind: String => "Type", plain, default;
        /// `client` (access-restricted) or `public`.
        pub owner: String => "Owner", plain, default;
        /// The client owning the file.
        pub owner_client_id: Option<i64> => "OwnerClientId", plain, default;
        /// The uploading client.
        pub client_id: Option<i64> => "ClientId", plain, default;
        /// The uploading operator.
        pub user_id: Option<i64> => "UserId", plain, default;
        /// Original file name.
        pub name: String => "Name", plain, default;
        /// Storage path on the server.
        pub path: String => "Path", plain, default;
        /// Size in bytes.
        pub size: i64 => "Size", plain, default;
        /// Image width in pixels.
        pub image_width: Option<i64> => "ImageWidth", plain, default;
        /// Image height in pixels.
        pub image_height: Option<i64> => "ImageHeight", plain, default;
        /// MIME type.
        pub content_type: String => "ContentType", plain, default;
        /// Upload time.
        pub created_at: Millis => "CreatedAt", plain, default;
    }
}

wire_object! {
    /// The objects an event refers to (`Rels`), each a list.
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct Rels, expecting "a Rels object {Channels, Chats, ChatMessages, Clients, Projects, Users, Files}" {
        /// Channels.
        pub channels: Vec<Channel> => "Channels", plain, default;
        /// Chats.
        pub chats: Vec<Chat> => "Chats", plain, default;
        /// Messages.
        pub chat_messages: Vec<ChatMessage> => "ChatMessages", plain, default;
        /// Clients.
        pub clients: Vec<Client> => "Clients", plain, default;
        /// Projects.
        pub projects: Vec<Project> => "Projects", plain, default;
        /// Operators.
        pub users: Vec<User> => "Users", plain, default;
        /// Files.
        pub files: Vec<File> => "Files", plain, default;
    }
}
