//! The applicant's review page (好差评: 网上评、扫码评、一次一评): reached by a signed link, from
//! the QR code on the acceptance notice, the text message inviting a review, or the counter's
//! screen for one visit. No account: the link's signature names the case (and the visit). A
//! small page in Chinese; every refusal is a page too, with its 4xx status.
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use hub_core::access::Rule;
use hub_core::documents::escape;
use hub_core::{reviews, Command, Rejection};
use hub_web::Route;
use serde::Deserialize;

use super::cases::CasesState;
use crate::app::cases::CommandError;

pub fn routes() -> Vec<Route<CasesState>> {
    vec![
        Route::get("/review/{case_number}", Rule::Public, page)
            .doc("applicants", "the review page a signed link opens (no account)")
            .query::<LinkQuery>(),
        Route::post("/review/{case_number}", Rule::Public, submit)
            .doc(
                "applicants",
                "the applicant's review, posted from the review page (form fields t, visit, via, grade, comment)",
            )
            .any_body(),
    ]
}

/// What a review link carries: its signature, and for a counter visit the visit's id; `via`
/// says the link was scanned from the acceptance notice.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct LinkQuery {
    #[serde(default)]
    t: String,
    #[serde(default)]
    visit: Option<String>,
    #[serde(default)]
    via: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ReviewForm {
    #[serde(default)]
    t: String,
    #[serde(default)]
    visit: Option<String>,
    #[serde(default)]
    via: Option<String>,
    grade: i32,
    #[serde(default)]
    comment: String,
}

const GRADES: [(i32, &str); 5] = [(5, "非常满意"), (4, "满意"), (3, "基本满意"), (2, "不满意"), (1, "非常不满意")];

/// A page of the review site with `body` inside.
fn page_of(status: StatusCode, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>政务服务好差评</title>\
         <style>body{{font-family:sans-serif;max-width:32em;margin:1em auto;padding:0 1em}}\
         label{{display:block;padding:.4em 0}}textarea{{width:100%}}button{{font-size:1.1em;padding:.4em 2em}}</style>\
         </head><body><h1>政务服务“好差评”</h1>\n{body}\n</body></html>\n"
    );
    (status, Html(html)).into_response()
}

fn notice(status: StatusCode, message: &str) -> Response {
    page_of(status, &format!("<p class=\"notice\">{}</p>", escape(message)))
}

/// The channel a review comes by: a counter visit, the QR code, or the link itself.
fn channel(visit: Option<&str>, via: Option<&str>) -> &'static str {
    match (visit, via) {
        (Some(_), _) => "counter",
        (None, Some("qr")) => "qr",
        (None, _) => "online",
    }
}

/// Whether the link's signature is the one for the case (and visit) it names.
fn signed(state: &CasesState, case_number: &str, visit: Option<&str>, token: &str) -> bool {
    reviews::verify(&state.reference.get().review_key, case_number, visit, token)
}

fn forged() -> Response {
    notice(StatusCode::FORBIDDEN, "评价链接无效或已被改动，请重新扫描受理通知书上的二维码或打开短信中的链接。")
}

async fn page(
    State(state): State<CasesState>,
    Path(case_number): Path<String>,
    Query(link): Query<LinkQuery>,
) -> Response {
    let visit = link.visit.as_deref();
    if !signed(&state, &case_number, visit, &link.t) {
        return forged();
    }
    let case = match state.store.snapshot(&case_number).await {
        Ok(Some(case)) => case,
        Ok(None) => return notice(StatusCode::NOT_FOUND, "没有这个办件。"),
        Err(error) => {
            tracing::error!(%error, "review page");
            return notice(StatusCode::SERVICE_UNAVAILABLE, "系统繁忙，请稍后再试。");
        }
    };
    let done = match visit {
        Some(visit) => case.reviewed_visits.iter().any(|v| v == visit),
        None => case.online_reviewed,
    };
    if done {
        return notice(StatusCode::OK, "您已评价过，感谢您的监督。");
    }
    let options: String = GRADES
        .iter()
        .map(|(grade, title)| {
            format!("<label><input type=\"radio\" name=\"grade\" value=\"{grade}\" required> {title}</label>")
        })
        .collect();
    let hidden = |name: &str, value: Option<&str>| {
        value.map_or_else(String::new, |v| format!("<input type=\"hidden\" name=\"{name}\" value=\"{}\">", escape(v)))
    };
    let body = format!(
        "<p>办件编号：{number}<br>办理事项：{matter}</p>\n\
         <form method=\"post\" action=\"/review/{number}\">{t}{visit}{via}\n<fieldset><legend>请对本次服务评价</legend>{options}</fieldset>\n\
         <label>意见建议（选填）<textarea name=\"comment\" rows=\"3\" maxlength=\"500\"></textarea></label>\n\
         <button type=\"submit\">提交评价</button></form>\n<p>评价“不满意”“非常不满意”的，监察人员将调查核实并答复您。</p>",
        number = escape(&case.case_number),
        matter = escape(&case.application.matter.name),
        t = hidden("t", Some(&link.t)),
        visit = hidden("visit", visit),
        via = hidden("via", link.via.as_deref()),
    );
    page_of(StatusCode::OK, &body)
}

async fn submit(
    State(state): State<CasesState>,
    Path(case_number): Path<String>,
    form: Result<Form<ReviewForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return notice(StatusCode::UNPROCESSABLE_ENTITY, "请选择一个评价等级后提交。");
    };
    let visit = form.visit.as_deref().filter(|v| !v.is_empty());
    if !signed(&state, &case_number, visit, &form.t) {
        return forged();
    }
    let comment: String = form.comment.trim().chars().take(500).collect();
    let command = Command::Review {
        grade: form.grade,
        channel: channel(visit, form.via.as_deref()).into(),
        comment,
        visit_id: visit.map(String::from),
    };
    match state.commands.execute(&case_number, command, None).await {
        Ok(_) if (1..=2).contains(&form.grade) => {
            notice(StatusCode::OK, "感谢您的评价。您的意见已转监察人员调查核实，核实结果将以短信答复您。")
        }
        Ok(_) => notice(StatusCode::OK, "感谢您的评价！"),
        Err(CommandError::NotFound(_)) => notice(StatusCode::NOT_FOUND, "没有这个办件。"),
        Err(CommandError::Rejected(Rejection::AlreadyReviewed | Rejection::VisitReviewed)) => {
            notice(StatusCode::CONFLICT, "您已评价过，感谢您的监督。")
        }
        Err(CommandError::Rejected(Rejection::BadGrade)) => {
            notice(StatusCode::UNPROCESSABLE_ENTITY, "请选择一个评价等级后提交。")
        }
        Err(CommandError::Rejected(rejection)) => notice(StatusCode::CONFLICT, &format!("暂时不能评价：{rejection}")),
        // An applicant's review is given by no seat, so no scope refuses it.
        Err(error @ CommandError::NotYours(_)) => notice(StatusCode::FORBIDDEN, &error.to_string()),
        Err(CommandError::Store(error)) => {
            tracing::error!(%error, "review");
            notice(StatusCode::SERVICE_UNAVAILABLE, "系统繁忙，请稍后再试。")
        }
    }
}
