//! The applicant's side of reviews and text messages: the phone (the SMS simulator's record of
//! what it delivered) and the review page a link opens.
use std::time::{Duration, Instant};

use connectors::sms::simulator::MessageRecord;

/// The texts of `template` the gateway delivered for `case`, once there is at least one.
pub async fn messages_of(sms_url: &str, case: &str, template: &str) -> Vec<MessageRecord> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let messages: Vec<MessageRecord> = super::admin(sms_url, "messages").await;
        let found: Vec<MessageRecord> =
            messages.into_iter().filter(|m| m.message.reference == case && m.message.template == template).collect();
        if !found.is_empty() {
            return found;
        }
        assert!(Instant::now() < deadline, "no {template} text for {case}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the applicant's phone shows for `template`.
pub async fn texts_of(sms_url: &str, case: &str, template: &str) -> Vec<String> {
    messages_of(sms_url, case, template).await.into_iter().map(|m| m.text).collect()
}

/// The review link of the SMS invitation for `case`.
pub async fn invitation_link(sms_url: &str, case: &str) -> String {
    messages_of(sms_url, case, "review-invitation").await[0].message.params["link"].clone()
}

/// Opens the review page of `link`: status and page.
pub async fn page(link: &str) -> (u16, String) {
    let response = reqwest::get(link).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Sends the review form of `link` with `grade` and `comment`: status and page.
pub async fn review(link: &str, grade: i32, comment: &str) -> (u16, String) {
    let url = url::Url::parse(link).unwrap();
    let mut form: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    form.extend([("grade".to_string(), grade.to_string()), ("comment".to_string(), comment.to_string())]);
    let action = format!("{}://{}{}", url.scheme(), url.authority(), url.path());
    let response = reqwest::Client::new().post(action).form(&form).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}
