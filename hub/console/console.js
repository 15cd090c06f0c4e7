// The console: one page, a view per task of the signed-in role. Every figure it shows comes
// from the hub's API, called with the user's own token, so the gate decides what each sees.
"use strict";

const STATES = {
  submitted: "已提交", awaiting_supplement: "待补正", not_accepted: "不予受理", accepted: "已受理",
  routed: "审查中", suspended: "特别程序中", approved: "准予许可", denied: "不予许可", withdrawn: "已撤回",
  delivery_requested: "待揽收", in_transit: "寄递中", delivered: "已妥投", delivery_failed: "投递失败",
  awaiting_pickup: "待领取", collected: "已领取", archived: "已归档",
};
const LEVELS = { none: "正常", warning: "预警", yellow: "黄牌", red: "红牌" };
const SCOPES = { county: "全县通办", city: "全市通办", province: "全省通办", "cross-province": "跨省通办" };
const DELIVERY = { window: "窗口领取", mail: "邮寄送达", locker: "智能柜自取" };
const WARNING_SCOPES = { case: "承诺时限", statutory: "法定时限", step: "审查步骤或特别程序时限", delivery: "决定后十日送达", commitment: "容缺承诺", outside_guide: "指南外要求材料", supervision: "督办逾期未反馈" };
const CONNECTORS = { "postal-connector": "邮政寄递", "ecert-connector": "电子证照库", "province-connector": "省政务服务平台", "bank-connector": "银行缴费网络" };
const RULES = { bulk_reads_off_hours: "非工作时间批量查询", read_without_case: "无办件调取个人数据", volume_above_norm: "交换量异常" };

let token = sessionStorage.getItem("hub-token") || "";
let me = null;

// --- small helpers -----------------------------------------------------------------------

/** An element with attributes (on* become listeners) and children (strings become text). */
function h(tag, attrs, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null && child !== false) element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

class ApiError extends Error {
  constructor(status, message, field) {
    super(`${STATUS_WORDS[status] || `错误 ${status}`}：${field ? `${message}（字段 ${field}）` : message}`);
    this.status = status;
    this.field = field;
  }
}

/** What each refusal means to the person at the screen. */
const STATUS_WORDS = {
  400: "填写有误", 401: "请重新登录", 403: "无此权限", 404: "未找到", 409: "当前状态不允许此操作",
  413: "内容过大", 422: "不符合办理规定", 429: "请求过于频繁，请稍候", 502: "外部系统暂不可用", 503: "系统繁忙，请稍后重试",
};

/** Calls the API with the signed-in token; JSON in, JSON (or HTML text) out. */
async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const isJson = (response.headers.get("content-type") || "").includes("json");
  const data = isJson ? await response.json() : await response.text();
  if (!response.ok) throw new ApiError(response.status, (data && data.error) || `${response.status} ${data}`, data && data.field);
  return data;
}

const dateOfDay = (day) => (day === null || day === undefined ? "—" : new Date(day * 86400000).toISOString().slice(0, 10));
const minute = (ms) => new Date(ms + 8 * 3600000).toISOString().slice(0, 16).replace("T", " ");
/** Now in Beijing time, as `YYYY-MM-DDTHH:MM…`: the dates and months the forms start from. */
const beijingNow = () => new Date(Date.now() + 8 * 3600000).toISOString();
const yuan = (fen) => (fen ? `¥${(fen / 100).toFixed(2)}` : "不收费");
const stateBadge = (state) => h("span", { class: "badge level-none", "data-state": state }, STATES[state] || state);
const levelBadge = (level) => h("span", { class: `badge level-${level || "none"}`, "data-level": level || "none" }, LEVELS[level || "none"]);
const errorLine = () => h("p", { class: "error", role: "alert" });
const show = (line, error) => { line.textContent = error ? error.message : ""; };
/** Marks the input a refusal names (its field, or a part of it) and puts the cursor there. */
function markWrong(inputs, failure) {
  Object.values(inputs).forEach((input) => input.removeAttribute("aria-invalid"));
  const name = failure && failure.field && Object.keys(inputs).find((n) => failure.field.startsWith(n));
  if (name) { inputs[name].setAttribute("aria-invalid", "true"); inputs[name].focus(); }
}
/** A link that saves JSON as a file, to be checked offline. */
function saveLink(id, name, data) {
  const href = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: "application/json" }));
  return h("a", { id, href, download: name, class: "button plain" }, `下载 ${name}`);
}

function table(headings, rows, rowAttrs) {
  return h("div", { class: "scroll" }, h("table", {},
    h("thead", {}, h("tr", {}, headings.map((title) => h("th", {}, title)))),
    h("tbody", {}, rows.map((cells, i) => h("tr", rowAttrs ? rowAttrs(i) : {}, cells.map((cell) => h("td", {}, cell)))))));
}

// --- printable documents -------------------------------------------------------------------

/** The case file's documents, each opened in a frame to read and print. */
async function documentsPanel(caseNumber) {
  const frame = h("iframe", { class: "notice", title: "文书预览" });
  const printButton = h("button", { type: "button", id: "print-notice", disabled: true, onclick: () => frame.contentWindow.print() }, "打印");
  const open = async (href) => {
    frame.srcdoc = await api("GET", href);
    printButton.disabled = false;
  };
  const { documents } = await api("GET", `/api/v1/cases/${caseNumber}/documents`);
  const list = table(["序号", "文书", "文号", "日期", "页"], documents.map((doc) => [
    doc.line.position,
    h("a", { href: "#", "data-kind": doc.kind, onclick: (event) => { event.preventDefault(); open(doc.href); } }, doc.line.title),
    doc.line.number, doc.line.date, `${doc.line.first_page}–${doc.line.last_page}`,
  ]));
  if (documents.length) await open(documents[documents.length - 1].href);
  return h("div", { class: "documents" }, h("h2", {}, "卷内文书"), list, h("div", { class: "actions" }, printButton), frame);
}

// --- counter acceptance (受理登记) ---------------------------------------------------------

async function acceptanceView(root) {
  const matters = await api("GET", "/api/v1/matters");
  const filter = h("input", { placeholder: "按事项名称检索", id: "matter-filter" });
  const list = h("div", { class: "matters", id: "matter-list" });
  const form = h("div", { class: "panel", id: "acceptance" }, h("p", { class: "muted" }, "请在左侧选择办理事项，查看办事指南和材料清单。"));
  const drawList = () => {
    list.replaceChildren();
    let department = null;
    let items = null;
    for (const matter of matters.filter((m) => m.name.includes(filter.value.trim()))) {
      if (matter.department_name !== department) {
        department = matter.department_name;
        list.append(h("div", { class: "department" }, department));
        items = list.appendChild(h("ul"));
      }
      items.append(h("li", { "data-code": matter.implementation_code, onclick: (event) => {
        list.querySelectorAll("li.chosen").forEach((li) => li.classList.remove("chosen"));
        event.currentTarget.classList.add("chosen");
        form.replaceChildren(...acceptanceForm(matter));
      } }, matter.name));
    }
  };
  filter.addEventListener("input", drawList);
  drawList();
  root.append(h("div", { class: "columns" }, h("div", { class: "panel" }, h("h1", {}, "选择事项"), filter, list), form));
}

function guide(matter) {
  const limit = matter.instant ? "即办件（当场办结）" : `法定 ${matter.statutory_days} 个工作日，承诺 ${matter.promised_days} 个工作日`;
  const rows = [
    ["事项名称", matter.name], ["实施编码", matter.implementation_code], ["事项类型", matter.kind],
    ["实施机关", matter.department_name], ["设定依据", matter.legal_basis], ["办理时限", limit],
    ["通办范围", SCOPES[matter.scope] || matter.scope], ["物流快递", matter.mail_allowed ? "支持邮寄送达" : "不支持，须到窗口领取"],
    ["收费标准", matter.fees.length ? matter.fees.map((fee) => `${fee.name} ${yuan(fee.amount_fen)}（${fee.basis}）`).join("；") : "不收费"],
    ["收费减免", matter.fee_relief.length ? matter.fee_relief.map((r) => `${r.name}：${r.payable_percent ? `按 ${r.payable_percent}% 收取` : "免收"}（${r.basis}）`).join("；") : "—"],
    ["办理结果", matter.certificate ? `${matter.certificate.name}（电子证照）` : "纸质文书"],
  ];
  return h("div", { class: "guide" }, h("h2", {}, "办事指南"), h("table", {}, h("tbody", {}, rows.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v))))));
}

function acceptanceForm(matter) {
  // The application's idempotency key: submitting twice (a double click, a retry) is one case.
  const requestId = `console-${Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, "0")).join("")}`;
  const checks = matter.materials.map((material, i) => ({
    material,
    status: h("select", { name: `material-${i}`, "data-material": material.name },
      h("option", { value: "ok" }, "已收取，符合要求"), h("option", { value: "missing" }, "未提交"), h("option", { value: "faulty" }, "有误"),
      material.ecert && h("option", { value: "ecert" }, "出示电子证照（免提交）")),
    problem: h("input", { name: `problem-${i}`, placeholder: material.ecert ? "问题说明，或电子证照标识" : "问题说明（有误时填写）" }),
  }));
  const materials = table(["材料名称", "主审/次审", "原件/复印件", "份数", "免提交", "收取情况", "说明"], checks.map(({ material, status, problem }) => [
    material.name, material.primary ? "主审" : "次审", material.original ? "原件" : "复印件", material.count,
    material.ecert ? "可用电子证照" : "—", status, problem,
  ]));
  const field = (label, name, attrs) => h("label", {}, label, h("input", { name, ...attrs }));
  const applicant = h("div", { class: "grid2" },
    field("申请人姓名", "applicant-name", { required: true }),
    h("label", {}, "证件类型", h("select", { name: "id-type" }, h("option", { value: "111" }, "居民身份证"), h("option", { value: "001" }, "统一社会信用代码"))),
    field("证件号码", "id-number", { required: true }),
    field("手机号码", "phone", { required: true }),
    field("电子邮箱（选填，用于接收告知）", "email", {}));
  const methods = ["window", "locker"].concat(matter.mail_allowed ? ["mail"] : []);
  const method = h("select", { name: "delivery" }, methods.map((m) => h("option", { value: m }, DELIVERY[m])));
  const address = h("div", { class: "grid2", hidden: true },
    field("收件人", "receiver-name", {}), field("收件人电话", "receiver-phone", {}),
    field("省", "receiver-province", { value: "陕西省" }), field("市", "receiver-city", { value: "咸阳市" }),
    field("县（区）", "receiver-county", { value: "旬邑县" }), field("邮政编码", "receiver-post-code", { value: "711300" }),
    field("详细地址", "receiver-address", {}));
  method.addEventListener("change", () => { address.hidden = method.value !== "mail"; });
  const tolerant = h("input", { type: "checkbox", name: "commits-to-supply" });
  // A waiver or reduction claimed, with the proof the clerk checked (低保证, 残疾证 …).
  const relief = h("select", { name: "fee-relief" }, h("option", { value: "" }, "不申请减免"), matter.fee_relief.map((r) => h("option", { value: r.rule }, r.name)));
  const proof = h("input", { name: "relief-proof", placeholder: "证明材料编号（如低保证号）" });
  const error = errorLine();
  const outcome = h("div", { id: "outcome" });
  const submit = h("button", { type: "submit", id: "submit-application" }, "提交受理");
  const value = (name) => applicant.querySelector(`[name=${name}]`) || address.querySelector(`[name=${name}]`);
  const onSubmit = async (event) => {
    event.preventDefault();
    show(error);
    const request = {
      request_id: requestId,
      matter_code: matter.implementation_code,
      service_point: me.unit,
      channel: me.role === "bank_outlet" ? "bank" : "counter",
      applicant: { name: value("applicant-name").value.trim(), id_type: value("id-type").value, id_number: value("id-number").value.trim(), phone: value("phone").value.trim(), email: value("email").value.trim() || null },
      materials: checks.filter((c) => c.status.value === "ok").map((c) => c.material.name),
      faulty_materials: checks.filter((c) => c.status.value === "faulty").map((c) => ({ material: c.material.name, problem: c.problem.value.trim() || "材料不符合要求" })),
      // The hub fetches and verifies each certificate before examining the materials.
      certificates: checks.filter((c) => c.status.value === "ecert").map((c) => ({ material: c.material.name, certificate_id: c.problem.value.trim() })),
      commits_to_supply: tolerant.checked,
      fee_relief: relief.value ? { rule: relief.value, proof_number: proof.value.trim() } : null,
      delivery: { method: method.value, address: method.value !== "mail" ? null : {
        name: value("receiver-name").value.trim(), phone: value("receiver-phone").value.trim(), province: value("receiver-province").value.trim(),
        city: value("receiver-city").value.trim(), county: value("receiver-county").value.trim(), address: value("receiver-address").value.trim(),
        post_code: value("receiver-post-code").value.trim() } },
    };
    submit.disabled = true;
    try {
      const submitted = await api("POST", "/api/v1/applications", request);
      outcome.replaceChildren(await caseOutcome(submitted));
      outcome.scrollIntoView();
    } catch (failure) {
      show(error, failure);
      submit.disabled = false;
    }
  };
  return [
    h("h1", {}, matter.name), guide(matter),
    h("form", { onsubmit: onSubmit },
      h("h2", {}, "材料清单（逐项核对）"), materials,
      h("label", {}, tolerant, " 容缺受理：主要材料齐全，申请人书面承诺限期补齐次要材料"),
      matter.fee_relief.length ? h("div", { class: "grid2" }, h("label", {}, "收费减免", relief), h("label", {}, "减免证明", proof)) : "",
      h("h2", {}, "申请人"), applicant,
      h("h2", {}, "送达方式"), method, address,
      h("div", { class: "actions" }, submit), error),
    outcome,
  ];
}

/** The outcome of a new application (examined as it was submitted) and its notice. */
async function caseOutcome(submitted) {
  const caseNumber = submitted.case_number;
  const c = (await api("GET", `/api/v1/cases/${caseNumber}`)).case;
  const outcome = { supplement_requested: "材料不全，一次性告知补正", refused: "不予受理" }[submitted.acceptance]
    || (c.acceptance === "tolerant" ? "容缺受理" : "已受理");
  const lines = [h("p", {}, "办件编号 ", h("strong", { id: "case-number" }, caseNumber), `，受理结果：${outcome}，当前状态：`, stateBadge(c.state))];
  if (c.promised_date !== null) lines.push(h("p", {}, `承诺办结日期：${dateOfDay(c.promised_date)}`));
  if (c.outstanding_materials.length) lines.push(h("p", {}, `容缺材料（须于 ${dateOfDay(c.commitment_date)} 前补齐）：${c.outstanding_materials.join("、")}`));
  return h("div", { class: "panel" }, h("h2", {}, "受理结果"), lines, await documentsPanel(caseNumber));
}

// --- case tracking (办件跟踪) --------------------------------------------------------------

async function trackingView(root) {
  const number = h("input", { name: "case-number", placeholder: "办件编号" });
  const state = h("select", { name: "state" }, Object.entries(STATES).map(([code, title]) => h("option", { value: code }, title)));
  const error = errorLine();
  const found = h("div", { id: "tracked" });
  const list = h("div", { id: "case-list" });
  const open = async (caseNumber) => {
    show(error);
    try { found.replaceChildren(await caseFile(caseNumber)); } catch (failure) { show(error, failure); }
  };
  const listState = async () => {
    show(error);
    try {
      const cases = await api("GET", `/api/v1/cases?state=${state.value}&limit=50`);
      list.replaceChildren(table(["办件编号", "事项", "申请人", "受理点", "承诺日期"], cases.map((c) => [
        h("a", { href: "#", onclick: (event) => { event.preventDefault(); open(c.case_number); } }, c.case_number),
        c.application.matter.name, c.application.applicant.name, c.application.service_point.name, dateOfDay(c.promised_date),
      ])));
    } catch (failure) { show(error, failure); }
  };
  root.append(
    h("div", { class: "panel" }, h("h1", {}, "办件跟踪"),
      h("form", { class: "actions", onsubmit: (event) => { event.preventDefault(); open(number.value.trim()); } },
        h("span", {}, "按编号查询"), number, h("button", { type: "submit", id: "track" }, "查询"),
        h("span", {}, "或按状态列出"), state, h("button", { type: "button", class: "plain", onclick: listState }, "列出")),
      error, list),
    found);
}

async function caseFile(caseNumber) {
  const [{ case: c }, { flow }] = await Promise.all([api("GET", `/api/v1/cases/${caseNumber}`), api("GET", `/api/v1/cases/${caseNumber}/flow`)]);
  const app = c.application;
  const facts = [
    ["事项", app.matter.name], ["申请人", `${app.applicant.name}（${app.applicant.id_number}）`], ["受理点", app.service_point.name],
    ["状态", stateBadge(c.state)], ["审批部门", c.department_name || "—"], ["承诺办结", dateOfDay(c.promised_date)],
    ["送达方式", DELIVERY[app.delivery_method] || app.delivery_method], ["运单号", c.waybill_number || "—"],
    ["收费", feeText(c.fee)],
  ];
  const panel = h("div", { class: "panel", "data-case": caseNumber },
    h("h1", {}, `办件 ${caseNumber}`),
    h("div", { class: "grid2" }, facts.map(([k, v]) => h("div", {}, h("span", { class: "muted" }, `${k}：`), v))),
    h("h2", {}, "流转记录（流转表）"),
    h("div", { id: "flow" }, table(["时间", "环节", "移交单位", "给件人", "接收单位", "接件人"], flow.map((step) => [minute(step.at), step.action, step.from, step.giver, step.to, step.receiver]))));
  if (me.role === "village_clerk" || me.role === "township_clerk" || me.role === "bank_outlet") {
    if (c.state === "awaiting_supplement") panel.append(await supplementForm(c));
    if (c.state === "awaiting_pickup") panel.append(pickupForm(c));
  }
  panel.append(caseActions(c));
  panel.append(await documentsPanel(caseNumber));
  return panel;
}

// --- the actions on a case (办理操作) --------------------------------------------------------

const COUNTER_ROLES = ["village_clerk", "township_clerk", "bank_outlet"];
const DECIDER_ROLES = ["township_clerk", "county_approver"];
const UNDECIDED = ["accepted", "routed", "suspended"];
const PROCEDURES = { site_inspection: "现场踏勘", hearing: "听证", expert_review: "专家评审" };
const STEPS = { make: "制证", seal: "盖章", dispatch: "出件" };

/** Each action a role may take on a case in some state: its form's fields and the body sent. */
const ACTIONS = [
  { id: "decision", title: "审批决定", roles: DECIDER_ROLES, when: (c) => c.state === "routed",
    fields: (c) => [choiceField("outcome", "决定", { approved: "准予许可", denied: "不予许可" }), textField("reason", "不予许可的理由（不予许可时必填）")],
    body: (v, c) => ({ outcome: v.outcome, department_code: c.department_code, reason: v.reason || null }) },
  { id: "refusal", title: "不予受理", roles: DECIDER_ROLES, when: (c) => ["submitted", "awaiting_supplement"].includes(c.state),
    fields: () => [textField("reason", "不予受理的理由", true), textField("legal_basis", "法律依据（法律法规条款）", true)] },
  { id: "procedures", title: "启动特别程序（踏勘、听证、专家评审）", roles: DECIDER_ROLES, when: (c) => c.state === "routed",
    fields: () => [choiceField("procedure", "程序", PROCEDURES), textField("departments", "参加部门代码（多个以逗号分隔）"), textField("parties", "当事人、利害关系人（多个以逗号分隔）"), dateField("scheduled_date", "听证日期（听证必填，至少七个工作日后）")],
    body: (v) => ({ procedure: v.procedure, departments: listOf(v.departments), parties: listOf(v.parties), scheduled_date: v.scheduled_date || null }) },
  { id: "procedures/complete", title: "特别程序结束，录入记录（踏勘笔录、听证笔录、评审意见）", roles: DECIDER_ROLES, when: (c) => c.state === "suspended",
    fields: () => [areaField("summary", "记录内容", true)] },
  // A consulted department gives its own opinion.
  { id: "opinions", title: "出具并联审批意见", roles: ["county_approver"], when: (c) => c.state === "routed" && opinionOwed(c),
    fields: () => [choiceField("opinion", "本部门意见", { agree: "同意", disagree: "不同意" }), textField("remarks", "说明")],
    body: (v) => ({ department_code: me.unit, opinion: v.opinion, remarks: v.remarks }) },
  { id: "steps", title: "完成办理环节（审查步骤；准予后制证、盖章、出件）", roles: DECIDER_ROLES, when: (c) => c.state === "routed" || (c.state === "approved"),
    fields: (c) => [c.state === "approved" ? choiceField("step", "环节", Object.fromEntries(Object.entries(STEPS).filter(([id]) => !c.steps.some((s) => s.step === id)))) : textField("step", "审查步骤代码（见审查细则）", true), textField("remarks", "说明")] },
  { id: "extension", title: "延长审批期限（第四十二条，限一次）", roles: DECIDER_ROLES, when: (c) => UNDECIDED.includes(c.state) && !c.extended,
    fields: () => [textField("approved_by", "批准延期的负责人", true), textField("reason", "延期理由", true)] },
  { id: "hearing-rights", title: "告知听证权利（听证权利告知书）", roles: DECIDER_ROLES, when: (c) => c.state === "routed" && c.hearing_request_by === null,
    fields: () => [textField("parties", "利害关系人（多个以逗号分隔）")], body: (v) => ({ parties: listOf(v.parties) }) },
  { id: "supervision/answer", title: "反馈督办单", roles: DECIDER_ROLES, when: (c) => c.supervisions.some((s) => !s.answered),
    fields: (c) => [choiceField("order_number", "督办单", Object.fromEntries(c.supervisions.filter((s) => !s.answered).map((s) => [s.order_number, `${s.order_number}（${dateOfDay(s.answer_by)} 前反馈）`]))), areaField("answer", "办理情况", true)] },
  { id: "certificate/revocation", title: "撤销电子证照", roles: DECIDER_ROLES, when: (c) => c.certificate && c.certificate.status === "valid",
    fields: () => [textField("reason", "撤销理由", true)] },
  { id: "complaints", title: "登记投诉：要求了指南以外的材料或条件", roles: COUNTER_ROLES, when: (c) => c.state !== "archived",
    fields: () => [textField("demanded", "被要求的材料或条件", true)] },
  { id: "commitment/close", title: "容缺承诺逾期未补齐的处理", roles: COUNTER_ROLES, when: (c) => c.outstanding_materials.length > 0 && !c.commitment_outcome,
    fields: () => [textField("outcome", "处理结果（如：撤销许可、记入信用记录）", true)] },
  { id: "withdrawal", title: "撤回申请（决定前，申请人书面申请）", roles: COUNTER_ROLES, when: (c) => ["submitted", "awaiting_supplement", ...UNDECIDED].includes(c.state),
    fields: () => [textField("reason", "撤回理由", true)] },
  { id: "review-visits", title: "请申请人评价本次服务（一次一评）", roles: COUNTER_ROLES, when: (c) => c.state !== "submitted",
    fields: () => [], done: reviewVisit },
  { id: "rectifications/verify", title: "差评核实（调查核实并答复申请人）", roles: ["supervisor"], when: (c) => c.rectifications.some((r) => !r.closed && r.substantiated === null),
    fields: (c) => [choiceField("item_number", "差评整改单", openItems(c, (r) => r.substantiated === null)), areaField("finding", "核实情况", true),
      choiceField("substantiated", "是否属实", { true: "属实，须整改", false: "不属实" }), areaField("reply", "答复申请人（短信）", true)],
    body: (v) => ({ item_number: v.item_number, finding: v.finding, substantiated: v.substantiated === "true", reply: v.reply }) },
  { id: "rectifications/close", title: "整改完成，关闭整改单", roles: ["supervisor"], when: (c) => c.rectifications.some((r) => !r.closed && r.substantiated === true),
    fields: (c) => [choiceField("item_number", "差评整改单", openItems(c, (r) => r.substantiated === true)), areaField("feedback", "整改情况及回访", true)] },
];

function opinionOwed(c) {
  return c.opinions_required.includes(me.unit) && !c.opinions.some((o) => o.department_code === me.unit);
}

function openItems(c, wanted) {
  return Object.fromEntries(c.rectifications.filter((r) => !r.closed && wanted(r)).map((r) => [r.item_number, `${r.item_number}（${dateOfDay(r.deadline)} 前）`]));
}
const listOf = (value) => value.split(/[,，、\s]+/).map((part) => part.trim()).filter(Boolean);
const textField = (name, label, required) => ({ name, label, required, make: () => h("input", { name, required, autocomplete: "off" }) });
const dateField = (name, label) => ({ name, label, make: () => h("input", { name, type: "date" }) });
const areaField = (name, label, required) => ({ name, label, required, make: () => h("textarea", { name, required, rows: 3 }) });
const choiceField = (name, label, options) => ({ name, label, make: () => h("select", { name }, Object.entries(options).map(([value, title]) => h("option", { value }, title))) });

/** The actions the signed-in role may take on this case now, each a keyboard-friendly form. */
function caseActions(c) {
  const mine = ACTIONS.filter((action) => action.roles.includes(me.role) && action.when(c));
  if (!mine.length) return h("div");
  return h("div", { class: "case-actions" }, h("h2", {}, "办理操作"), mine.map((action) => actionForm(action, c)));
}

function actionForm(action, c) {
  const fields = action.fields(c).map((field) => ({ ...field, input: field.make() }));
  const error = errorLine();
  const result = h("div", { class: "action-result" });
  const submit = h("button", { type: "submit", "data-submit": action.id }, "提交");
  const send = async (event) => {
    event.preventDefault();
    show(error);
    const inputs = Object.fromEntries(fields.map((f) => [f.name, f.input]));
    markWrong(inputs);
    const values = Object.fromEntries(fields.map((f) => [f.name, f.input.value.trim()]));
    const body = action.body ? action.body(values, c) : values;
    submit.disabled = true;
    try {
      const answer = await api("POST", `/api/v1/cases/${c.case_number}/${action.id}`, body);
      if (action.done) result.replaceChildren(action.done(answer));
      else document.getElementById("tracked").replaceChildren(await caseFile(c.case_number));
    } catch (failure) {
      show(error, failure);
      markWrong(inputs, failure);
    }
    submit.disabled = false;
  };
  return h("details", { class: "action", "data-action": action.id },
    h("summary", {}, action.title),
    h("form", { onsubmit: send },
      h("div", { class: "grid2" }, fields.map((f) => h("label", {}, f.label, f.input))),
      h("div", { class: "actions" }, submit), error),
    result);
}

/** A counter visit's review: the applicant grades it on their own screen, by its link or QR code. */
function reviewVisit(visit) {
  // The page is the hub's own: shown on this origin, wherever the public link points.
  const link = new URL(visit.link);
  const frame = h("iframe", { class: "review-screen", title: "申请人评价页", src: link.pathname + link.search });
  return h("div", { class: "panel", id: "review-visit" },
    h("p", {}, "请申请人在自己的手机上扫描二维码，或在副屏上评价本次服务（工作人员不代评）。"),
    h("p", {}, h("a", { href: visit.link, target: "_blank", id: "review-link" }, visit.link)),
    frame);
}

/** A case's fee as the counter tells it: due, relieved, paid with its receipts, refunded. */
function feeText(fee) {
  if (!fee) return "不收费";
  const paid = fee.payments.reduce((sum, [, fen]) => sum + fen, 0);
  const money = (fen) => `¥${(fen / 100).toFixed(2)}`;
  const parts = [`应缴 ${money(fee.total_fen)}`];
  if (fee.relief) parts.push(`减免 ${money(fee.relief.relieved_fen)}（${fee.relief.name}）`);
  parts.push(paid ? `已缴 ${money(paid)}${fee.receipts.length ? `，票据 ${fee.receipts.join("、")}` : ""}` : "未缴");
  if (fee.refund) parts.push(`${fee.refund.refund_id ? "已退" : "退费办理中"} ${money(fee.refund.amount_fen)}`);
  return parts.join("；");
}

async function supplementForm(c) {
  const matters = await api("GET", "/api/v1/matters");
  const matter = matters.find((m) => m.implementation_code === c.application.matter.implementation_code);
  const owed = (matter ? matter.materials.map((m) => m.name) : []).filter((name) => !c.materials.includes(name));
  const boxes = owed.map((name) => h("label", {}, h("input", { type: "checkbox", value: name, checked: true }), ` ${name}`));
  const error = errorLine();
  const send = async (event) => {
    event.preventDefault();
    try {
      await api("POST", `/api/v1/cases/${c.case_number}/supplements`, { materials: boxes.map((b) => b.firstChild).filter((b) => b.checked).map((b) => b.value) });
      document.getElementById("tracked").replaceChildren(await caseFile(c.case_number));
    } catch (failure) { show(error, failure); }
  };
  return h("form", { onsubmit: send }, h("h2", {}, "补正材料"), boxes, h("button", { type: "submit" }, "提交补正"), error);
}

function pickupForm(c) {
  const by = h("input", { name: "collected-by", value: c.application.applicant.name });
  const id = h("input", { name: "pickup-id", placeholder: "申请人证件号码" });
  const notice = h("input", { name: "pickup-notice", placeholder: "受理通知书编号（扫码或录入）" });
  const agentId = h("input", { name: "pickup-agent-id", placeholder: "代取件人证件号码（本人领取不填）" });
  const authorization = h("input", { name: "pickup-authorization", placeholder: "委托书编号（企业代理人）" });
  const code = h("input", { name: "pickup-code", placeholder: "取件码（智能柜）" });
  const error = errorLine();
  const send = async (event) => {
    event.preventDefault();
    const body = { collected_by: by.value.trim(), signature: by.value.trim() };
    if (id.value.trim()) body.id_number = id.value.trim();
    if (notice.value.trim()) body.notice_number = notice.value.trim();
    if (agentId.value.trim()) body.agent = { id_number: agentId.value.trim(), authorization_number: authorization.value.trim() || null };
    if (code.value.trim()) body.pickup_code = code.value.trim();
    try {
      await api("POST", `/api/v1/cases/${c.case_number}/pickup`, body);
      document.getElementById("tracked").replaceChildren(await caseFile(c.case_number));
    } catch (failure) { show(error, failure); }
  };
  return h("form", { onsubmit: send }, h("h2", {}, "领取结果"), h("div", { class: "grid2" }, h("label", {}, "领取人", by), h("label", {}, "申请人证件号码", id), h("label", {}, "受理通知书", notice), h("label", {}, "代取件人证件", agentId), h("label", {}, "委托书", authorization), h("label", {}, "取件码", code)), h("button", { type: "submit", id: "confirm-pickup" }, "确认领取"), error);
}

// --- approvers' queue (审批队列) -----------------------------------------------------------

async function approvalView(root) {
  const panel = h("div", { class: "panel" });
  const detail = h("div", { id: "tracked" });
  const draw = async () => {
    const queue = await api("GET", "/api/v1/approvals");
    const error = errorLine();
    const decide = async (item, outcome, reason) => {
      show(error);
      try {
        await api("POST", `/api/v1/cases/${item.case_number}/decision`, { outcome, officer: me.holder, department_code: item.department_code, reason: reason || null });
        await draw();
      } catch (failure) { show(error, failure); }
    };
    const rows = queue.map((item) => {
      const reason = h("input", { placeholder: "不予许可的理由", name: "reason" });
      const level = item.deadline ? item.deadline.level : null;
      const waiting = item.opinions_pending.length ? `待 ${item.opinions_pending.length} 个部门出具意见` : "—";
      const fee = item.fee ? `${yuan(item.fee.total_fen)} ${item.fee.paid ? "已缴" : "未缴"}` : "—";
      return [
        h("a", { href: "#", onclick: async (event) => { event.preventDefault(); detail.replaceChildren(await caseFile(item.case_number)); } }, item.case_number),
        item.matter, item.promised_date || "—", item.deadline ? item.deadline.working_days_left : "—", levelBadge(level), waiting, fee,
        h("div", { class: "actions" },
          h("button", { type: "button", class: "small", "data-approve": item.case_number, onclick: () => decide(item, "approved") }, "准予许可"),
          reason, h("button", { type: "button", class: "small plain", "data-deny": item.case_number, onclick: () => decide(item, "denied", reason.value.trim()) }, "不予许可")),
      ];
    });
    const levelOf = (i) => (queue[i].deadline && queue[i].deadline.level) || "none";
    panel.replaceChildren(h("h1", {}, `审批队列（${queue.length} 件）`),
      h("p", { class: "legend" }, ["none", "warning", "yellow", "red"].map((l) => h("span", {}, levelBadge(l === "none" ? null : l), " ", { none: "时限充裕", warning: "临近承诺期限（预警）", yellow: "已超期（黄牌）", red: "超期超过县定阈值（红牌）" }[l]))),
      error,
      table(["办件编号", "事项", "承诺办结", "剩余工作日", "时限预警", "并联审批", "收费", "审批"], rows, (i) => ({ class: `level-${levelOf(i)}`, "data-case": queue[i].case_number })));
  };
  await draw();
  root.append(panel, detail);
}

// --- supervisors' warnings (超时预警) ------------------------------------------------------

async function warningsView(root) {
  const { warnings } = await api("GET", "/api/v1/warnings?limit=500");
  const recent = warnings.slice().reverse();
  root.append(h("div", { class: "panel" }, h("h1", {}, `超时预警（${warnings.length} 条）`),
    table(["时间", "办件编号", "预警", "范围", "到期日", "升级督办", "内容"], recent.map((w) => [
      minute(w.occurred_at), w.case_number, levelBadge(w.level), WARNING_SCOPES[w.scope] || w.scope, dateOfDay(w.due_date), w.escalate ? "是" : "否", w.message,
    ]), (i) => ({ class: `level-${recent[i].level}` }))));
}

// --- supervisors' board (电子监察) ----------------------------------------------------------

const BOARD_KINDS = {
  deadline: "临近或超过办理时限", stalled: "环节停滞", repeated_supplements: "多次告知补正", refusal_without_basis: "不予受理/不予许可缺依据",
  fee_outside_guide: "收费与指南不符", bad_review_unanswered: "差评未核实", supervision_overdue: "督办逾期未反馈",
};
/** Seconds between two refreshes of the live board. */
const BOARD_REFRESH_SECONDS = 10;

async function boardView(root) {
  const unit = h("input", { name: "board-unit", placeholder: "单位代码（乡镇、站点、部门），不填为全县" });
  const level = h("select", { name: "board-level" }, h("option", { value: "" }, "全部"), ["red", "yellow", "warning"].map((l) => h("option", { value: l }, LEVELS[l])));
  const error = errorLine();
  const stamp = h("span", { class: "muted", id: "board-stamp" });
  const summary = h("div", { id: "board-summary" });
  const items = h("div", { id: "board-items" });
  const detail = h("div", { id: "tracked" });
  const draw = async () => {
    const query = new URLSearchParams();
    if (unit.value.trim()) query.set("unit", unit.value.trim());
    if (level.value) query.set("level", level.value);
    try {
      const board = await api("GET", `/api/v1/supervision/board?${query}`);
      show(error);
      stamp.textContent = `更新于 ${minute(board.generated_at)}，每 ${BOARD_REFRESH_SECONDS} 秒自动刷新`;
      summary.replaceChildren(h("div", { class: "legend" }, ["red", "yellow", "warning"].map((l) => h("span", { "data-count": l }, levelBadge(l), ` ${board.by_level[l] || 0} 件`))),
        bars("board-chart", Object.entries(BOARD_KINDS).map(([kind, title]) => [title, board.by_kind[kind] || 0])));
      items.replaceChildren(table(["监察", "办件编号", "事项", "情况", "受理点", "审批部门", ""], board.items.map((item) => [
        levelBadge(item.level), h("a", { href: "#", onclick: async (event) => { event.preventDefault(); detail.replaceChildren(await caseFile(item.case_number)); } }, item.case_number),
        BOARD_KINDS[item.kind] || item.kind, item.detail, item.point_name || item.point, item.department_name || item.department || "—",
        h("a", { href: "#", onclick: async (event) => { event.preventDefault(); detail.replaceChildren(await caseFile(item.case_number)); detail.querySelector("#flow").scrollIntoView(); } }, "流转记录"),
      ]), (i) => ({ class: `level-${board.items[i].level}`, "data-kind": board.items[i].kind, "data-case": board.items[i].case_number })));
    } catch (failure) { show(error, failure); }
  };
  const filters = h("form", { class: "actions", onsubmit: (event) => { event.preventDefault(); draw(); } },
    h("span", {}, "单位"), unit, h("span", {}, "预警级别"), level, h("button", { type: "submit", id: "board-filter" }, "筛选"), stamp);
  await draw();
  // Live: the board refreshes itself while it is the open view.
  const timer = setInterval(() => { if (root.isConnected) draw(); else clearInterval(timer); }, BOARD_REFRESH_SECONDS * 1000);
  root.append(h("div", { class: "panel" }, h("h1", {}, "电子监察"), filters, error, summary, items), detail);
}

/** Horizontal bars, one per [label, value]. */
function bars(id, rows) {
  const top = Math.max(1, ...rows.map(([, value]) => value));
  const [label, width, row] = [190, 520, 20];
  const svg = svgNode(null, "svg", { viewBox: `0 0 ${label + width + 60} ${rows.length * row + 4}`, id, class: "bars" });
  const add = (tag, attrs, content) => svgNode(svg, tag, attrs, content);
  rows.forEach(([title, value], i) => {
    add("text", { x: label - 6, y: i * row + 14, "text-anchor": "end" }, title);
    add("rect", { x: label, y: i * row + 3, width: (value / top) * width, height: row - 6, fill: PALETTE[1], "data-label": title, "data-value": value });
    add("text", { x: label + (value / top) * width + 4, y: i * row + 14 }, String(value));
  });
  return svg;
}

// --- supervisors' reports (办件通报) ---------------------------------------------------------

const percent = (share) => (share.rate === null || share.rate === undefined ? "—" : `${(share.rate * 100).toFixed(1)}%（${share.count}/${share.of}）`);

async function reportsView(root) {
  const now = beijingNow();
  const period = h("input", { name: "report-period", value: now.slice(0, 7), placeholder: "2026-12、2026-Q4、2026 或 2026-12-02" });
  const unit = h("input", { name: "report-unit", placeholder: "单位或窗口代码，不填为全县" });
  const error = errorLine();
  const shown = h("div", { id: "report" });
  const links = h("div", { class: "actions" });
  const draw = async (event) => {
    if (event) event.preventDefault();
    show(error);
    const query = new URLSearchParams({ period: period.value.trim() });
    if (unit.value.trim()) query.set("unit", unit.value.trim());
    try {
      const { report: r } = await api("GET", `/api/v1/reports?${query}`);
      const rows = [
        ["收件", r.received], ["网上申请", percent(r.online)], ["村站收件", percent(r.village_station)], ["银行网点代办", percent(r.bank_outlet)], ["全城通办", percent(r.city_wide)],
        ["受理", r.accepted], ["容缺受理", percent(r.tolerant)], ["不予受理", r.refused], ["告知补正", r.incomplete], ["多次告知补正", r.repeated_notices],
        ["容缺承诺按期补齐", percent(r.commitments_kept)], ["办结", r.decided], ["按时办结", percent(r.on_time)], ["即办件当日办结", percent(r.instant_same_day)],
        ["平均用时（工作日）", r.mean_working_days === null ? "—" : r.mean_working_days.toFixed(1)], ["90% 办件用时不超过（工作日）", r.p90_working_days === null ? "—" : r.p90_working_days],
        ["归档", r.archived], ["最多跑一次", percent(r.one_trip)], ["评价", r.reviews], ["好评率", percent(r.good_reviews)], ["差评", r.bad_reviews],
        ["差评按期整改", percent(r.rectified_on_time)], ["督办按期反馈", percent(r.supervision_answered_on_time)],
        ["收费", yuan(r.fees_collected_fen)], ["退费", yuan(r.fees_refunded_fen)], ["减免", `${yuan(r.fees_relieved_fen)}（${r.reliefs} 笔）`],
      ];
      shown.replaceChildren(
        h("p", { class: "muted" }, `${r.first_day} 至 ${r.last_day}`),
        h("div", { class: "columns" },
          table(["指标", "数值"], rows, (i) => ({ "data-figure": rows[i][0] })),
          h("div", {}, h("h2", {}, "送达方式"), bars("out-chart", Object.entries({ mail: "邮寄", window: "窗口", locker: "智能柜", village_station: "村站" }).map(([k, t]) => [t, r.results_out[k] || 0])),
            h("h2", {}, "预警与红黄牌"), bars("card-chart", ["warning", "yellow", "red"].map((l) => [LEVELS[l], r.cards[l] || 0])))));
      // The printable bulletin and the spreadsheet, fetched with the token and handed over as files.
      const file = async (path, name, type) => {
        const response = await fetch(`${path}?period=${encodeURIComponent(period.value.trim())}`, { headers: { Authorization: `Bearer ${token}` } });
        if (!response.ok) { show(error, new ApiError(response.status, (await response.json()).error)); return; }
        const blob = new Blob([await response.arrayBuffer()], { type });
        if (type.startsWith("text/html")) window.open(URL.createObjectURL(blob), "_blank");
        else Object.assign(document.createElement("a"), { href: URL.createObjectURL(blob), download: name }).click();
      };
      links.replaceChildren(
        h("button", { type: "button", class: "plain", id: "bulletin-html", onclick: () => file("/api/v1/reports/bulletin", "", "text/html") }, "打印办件通报（A4）"),
        h("button", { type: "button", class: "plain", id: "bulletin-xlsx", onclick: () => file("/api/v1/reports/bulletin/xlsx", `办件通报-${period.value.trim()}.xlsx`, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet") }, "下载电子表格"));
    } catch (failure) { show(error, failure); }
  };
  await draw();
  root.append(h("div", { class: "panel" }, h("h1", {}, "办件通报"),
    h("form", { class: "actions", onsubmit: draw }, h("span", {}, "统计期间"), period, h("span", {}, "单位"), unit, h("button", { type: "submit", id: "show-report" }, "统计")),
    error, links, shown));
}

// --- supervisors' review statistics (好差评) --------------------------------------------------

const GRADES = ["非常满意", "满意", "基本满意", "不满意", "非常不满意"];

async function reviewsView(root) {
  const stats = await api("GET", "/api/v1/reviews/stats");
  const section = (title, id, tallies) => {
    const units = Object.entries(tallies).sort(([, a], [, b]) => b.bad - a.bad || b.reviews - a.reviews);
    if (!units.length) return h("div", { class: "panel" }, h("h1", {}, title), h("p", { class: "muted" }, "尚无评价。"));
    return h("div", { class: "panel" }, h("h1", {}, title),
      bars(`${id}-chart`, units.map(([code, t]) => [t.name || code, t.bad])),
      h("div", { id }, table(["单位", "评价", ...GRADES, "差评", "差评率", "平均分"], units.map(([code, t]) => [
        t.name || code, t.reviews, ...t.grades.slice().reverse(), t.bad, `${((t.bad / t.reviews) * 100).toFixed(1)}%`, t.average.toFixed(2),
      ]), (i) => ({ "data-unit": units[i][0], class: units[i][1].bad ? "level-yellow" : "" }))));
  };
  root.append(
    h("p", { class: "muted" }, "差评数（图）与各等级评价数（表），差评多的单位在前；评价 1 至 5 分，1、2 分为差评。"),
    section("服务点评价", "reviews-by-point", stats.by_service_point),
    section("审批部门评价", "reviews-by-department", stats.by_department));
}

// --- integrators' reconciliation (银行对账) --------------------------------------------------

const DISCREPANCIES = { missing_in_hub: "银行有、平台无（到账未确认）", missing_at_bank: "平台有、银行无", duplicate: "重复缴费", amount_mismatch: "金额不符", unknown_order: "未知缴费单" };

async function reconciliationView(root) {
  const day = h("input", { name: "reconcile-day", type: "date", value: beijingNow().slice(0, 10) });
  const error = errorLine();
  const shown = h("div", { id: "reconciliation" });
  const render = (r, title) => h("div", {},
    h("h2", {}, title),
    h("p", { "data-matched": r.matched }, `对账单 ${r.statement_lines} 笔，平台记录 ${r.recorded_payments} 笔，一致 ${r.matched} 笔，差异 ${r.discrepancies.length} 笔。`),
    r.discrepancies.length ? table(["差异", "交易号", "缴费单号", "应缴", "实缴"], r.discrepancies.map((d) => [DISCREPANCIES[d.kind] || d.kind, d.payment_id, d.order_number, d.expected_fen === null ? "—" : yuan(d.expected_fen), yuan(d.paid_fen)]), (i) => ({ "data-kind": r.discrepancies[i].kind })) : h("p", { class: "ok" }, "无差异。"));
  const present = (r) => shown.replaceChildren(render(r, `${r.day} 缴费对账`), r.refunds ? render(r.refunds, `${r.day} 退费对账`) : "");
  const run = async (event) => {
    event.preventDefault();
    show(error);
    try { present(await api("POST", "/api/v1/bank/reconciliations", { date: day.value })); } catch (failure) { show(error, failure); }
  };
  const latest = async () => {
    show(error);
    try { present(await api("GET", `/api/v1/bank/reconciliations/${day.value}`)); } catch (failure) { show(error, failure); }
  };
  root.append(h("div", { class: "panel" }, h("h1", {}, "银行缴费对账"),
    h("form", { class: "actions", onsubmit: run }, h("span", {}, "对账日期"), day, h("button", { type: "submit", id: "run-reconciliation" }, "立即对账"), h("button", { type: "button", class: "plain", onclick: latest }, "查看最近结果")),
    error, shown));
}

// --- integrators' tokens (令牌管理) -----------------------------------------------------------

const ROLES = {
  village_clerk: "村级代办员", township_clerk: "乡镇便民服务中心窗口人员", bank_outlet: "银行网点代办员", county_approver: "县级审批人员",
  supervisor: "效能督查人员", postal: "邮政寄递", data_bureau: "县数据局", integrator: "系统集成人员",
};

async function tokensView(root) {
  const panel = h("div", { class: "panel" });
  const issued = h("div", { id: "issued-token" });
  const error = errorLine();
  const field = (label, input) => h("label", {}, label, input);
  const holder = h("input", { name: "token-holder", required: true });
  const kind = h("select", { name: "token-kind" }, h("option", { value: "person" }, "个人"), h("option", { value: "system" }, "系统"));
  const role = h("select", { name: "token-role" }, Object.entries(ROLES).map(([code, title]) => h("option", { value: code }, title)));
  const unit = h("input", { name: "token-unit", placeholder: "服务点或部门代码（县级角色不填）" });
  const window_ = h("input", { name: "token-window", placeholder: "窗口代码（选填）" });
  const draw = async () => {
    const { tokens } = await api("GET", "/api/v1/tokens");
    const revoke = async (id) => {
      show(error);
      try { await api("POST", `/api/v1/tokens/${id}/revocation`); await draw(); } catch (failure) { show(error, failure); }
    };
    panel.replaceChildren(h("h1", {}, `访问令牌（${tokens.length} 个）`), error, table(["持有人", "角色", "单位", "窗口", "签发", "到期", "状态", ""], tokens.map((t) => [
      t.holder, ROLES[t.role] || t.role, t.unit || "—", t.window || "—", minute(t.issued_at), minute(t.expires_at),
      t.revoked_at ? `已吊销 ${minute(t.revoked_at)}` : "有效",
      t.revoked_at ? "" : h("button", { type: "button", class: "small plain", "data-revoke": t.token_id, onclick: () => revoke(t.token_id) }, "吊销"),
    ]), (i) => ({ "data-token": tokens[i].token_id })));
  };
  const issue = async (event) => {
    event.preventDefault();
    show(error);
    try {
      const body = { holder: holder.value.trim(), kind: kind.value, role: role.value, unit: unit.value.trim() || null, window: window_.value.trim() || null };
      const answer = await api("POST", "/api/v1/tokens", body);
      issued.replaceChildren(h("p", { class: "ok" }, `已签发，令牌仅显示这一次，请交给 ${answer.holder}：`), h("code", { id: "new-token" }, answer.token));
      await draw();
    } catch (failure) { show(error, failure); }
  };
  await draw();
  root.append(h("div", { class: "panel" }, h("h1", {}, "签发令牌"),
    h("form", { onsubmit: issue }, h("div", { class: "grid2" }, field("持有人", holder), field("类型", kind), field("角色", role), field("单位", unit), field("窗口", window_)),
      h("div", { class: "actions" }, h("button", { type: "submit", id: "issue-token" }, "签发"))), issued), panel);
}

// --- integrators' operations (运维) ---------------------------------------------------------

async function operationsView(root) {
  const error = errorLine();
  const outcome = h("div", { id: "operation-outcome" });
  const run = (title, method, path, body) => async () => {
    show(error);
    try {
      const answer = await api(method, path, body ? body() : undefined);
      outcome.replaceChildren(h("h2", {}, title), h("pre", { class: "scroll" }, JSON.stringify(answer, null, 2)));
    } catch (failure) { show(error, failure); }
  };
  const before = h("input", { name: "archive-before", type: "date" });
  const group = h("input", { name: "offsets-group", placeholder: "消费组，如 postal-connector" });
  const to = h("input", { name: "offsets-to", placeholder: "earliest、latest 或 RFC 3339 时刻" });
  root.append(h("div", { class: "panel" }, h("h1", {}, "运维操作"),
    h("div", { class: "actions" },
      h("button", { type: "button", id: "sync-catalogue", onclick: run("事项目录同步", "POST", "/api/v1/catalogue/sync") }, "立即同步省事项目录"),
      h("button", { type: "button", id: "make-checkpoint", onclick: run("审计账本签名检查点", "POST", "/api/v1/audit/checkpoints") }, "签名审计检查点")),
    h("h2", {}, "归档审计记录"),
    h("div", { class: "actions" }, h("span", {}, "归档此日期前的记录"), before,
      h("button", { type: "button", class: "plain", onclick: run("审计记录归档", "POST", "/api/v1/audit/archives", () => ({ before: `${before.value}T00:00:00+08:00` })) }, "归档")),
    h("h2", {}, "重置消费位点（重放或跳过）"),
    h("div", { class: "actions" }, group, to,
      h("button", { type: "button", class: "plain", onclick: () => run("消费位点", "POST", `/api/v1/connectors/${encodeURIComponent(group.value.trim())}/offsets/reset`, () => ({ to: to.value.trim() }))() }, "重置")),
    error, outcome));
}

// --- postal board (邮政看板) ---------------------------------------------------------------

async function postalView(root) {
  const { orders } = await api("GET", "/api/v1/delivery-orders");
  const columns = ["delivery_requested", "in_transit", "delivered", "delivery_failed"].map((state) => {
    const mine = orders.filter((o) => o.state === state);
    return h("div", { class: "panel column", "data-column": state }, h("h2", {}, `${STATES[state]}（${mine.length}）`), mine.map((o) => {
      const r = o.receiver || {};
      return h("div", { class: "card", "data-order": o.order_number || o.case_number },
        h("div", {}, h("strong", {}, o.waybill_number || "待分配运单号"), " · ", o.order_number || ""),
        h("div", {}, `收件：${r.name || ""} ${r.phone || ""}`),
        h("div", { class: "muted" }, `${r.province || ""}${r.city || ""}${r.county || ""}${r.address || ""} ${r.post_code || ""}`),
        h("div", { class: "muted" }, `寄件：${o.sender || ""} · 轨迹 ${o.tracking_events} 条${o.delivery_outcome ? ` · ${o.delivery_outcome}` : ""}`));
    }));
  });
  root.append(h("h1", {}, `邮政寄递看板（${orders.length} 单）`), h("div", { class: "board" }, columns));
}

// --- data bureau's audit (数据共享审计) ----------------------------------------------------

const PALETTE = ["#b71c1c", "#1c4fa1", "#2f855a", "#b7791f", "#6b46c1", "#2c7a7b", "#c05621", "#4a5568", "#d53f8c", "#718096"];

/** An SVG element with attributes and text, appended to `parent` when there is one. */
function svgNode(parent, tag, attrs, text) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  if (parent) parent.append(node);
  return node;
}

/** A stacked bar per day, one colour per series; `points` are {day, series, value}. */
function stackedBars(id, points) {
  const days = [...new Set(points.map((p) => p.day))].sort();
  const series = [...new Set(points.map((p) => p.series))].sort();
  const totals = days.map((day) => points.filter((p) => p.day === day).reduce((sum, p) => sum + p.value, 0));
  const [width, height, left, bottom] = [1240, 220, 44, 24];
  const top = Math.max(1, ...totals);
  const band = (width - left) / Math.max(days.length, 1);
  const barWidth = Math.min(band * 0.7, 48);
  const y = (value) => (height - bottom) * (1 - value / top);
  const svg = svgNode(null, "svg", { viewBox: `0 0 ${width} ${height}`, id, width: "100%" });
  const add = (tag, attrs, text) => svgNode(svg, tag, attrs, text);
  add("text", { x: 0, y: 10 }, String(top));
  add("line", { x1: left, x2: width, y1: height - bottom, y2: height - bottom, stroke: "#b8c0cc" });
  days.forEach((day, d) => {
    let base = 0;
    series.forEach((name, s) => {
      const value = points.filter((p) => p.day === day && p.series === name).reduce((sum, p) => sum + p.value, 0);
      if (!value) return;
      const bar = add("rect", { x: left + d * band + (band - barWidth) / 2, width: barWidth, y: y(base + value), height: y(base) - y(base + value), fill: PALETTE[s % PALETTE.length], "data-day": day, "data-series": name });
      svgNode(bar, "title", {}, `${day} ${name}：${value}`);
      base += value;
    });
    add("text", { x: left + d * band + band / 2, y: height - 6, "text-anchor": "middle" }, day.slice(5));
    add("text", { x: left + d * band + band / 2, y: y(totals[d]) - 3, "text-anchor": "middle" }, String(totals[d]));
  });
  const legend = h("div", { class: "legend" }, series.map((name, s) => h("span", {}, h("i", { style: `background:${PALETTE[s % PALETTE.length]}` }), name)));
  return h("div", {}, svg, legend);
}

/** A Beijing-time `datetime-local` value as the RFC 3339 instant the API takes ("" stays "", for the API to name). */
const instantOf = (local) => (local ? `${local.length === 16 ? `${local}:00` : local}+08:00` : "");
/** The command that checks a saved file with the hub's public key alone, away from the hub. */
const offlineCheck = (name, publicKey) => h("p", { class: "muted" }, "离线校验：", h("code", {}, `hub audit check ${name} --public-key ${publicKey}`));

/** The data bureau takes a period's entries away as a signed bundle that checks offline. */
function exportPanel(publicKey) {
  const today = beijingNow().slice(0, 10);
  const inputs = {
    from: h("input", { type: "datetime-local", name: "export-from", value: `${today}T00:00` }),
    until: h("input", { type: "datetime-local", name: "export-until", value: `${today}T23:59` }),
  };
  const error = errorLine();
  const result = h("div", { id: "export-result" });
  const send = async (event) => {
    event.preventDefault();
    show(error);
    markWrong(inputs);
    result.replaceChildren();
    try {
      const bundle = await api("POST", "/api/v1/audit/exports", { from: instantOf(inputs.from.value), until: instantOf(inputs.until.value) });
      const [first, last] = [bundle.entries[0].seq, bundle.entries[bundle.entries.length - 1].seq];
      const name = `audit-export-${inputs.from.value.slice(0, 10)}-${inputs.until.value.slice(0, 10)}.json`;
      result.replaceChildren(
        h("p", { class: "ok", "data-entries": bundle.entries.length }, `导出 ${bundle.entries.length} 条记录（第 ${first} 至 ${last} 条），附检查点签名（覆盖至第 ${bundle.checkpoint.size} 条，签于 ${minute(bundle.checkpoint.created_at)}）和末条记录的包含证明。`),
        saveLink("export-file", name, bundle), offlineCheck(name, publicKey));
    } catch (failure) { show(error, failure); markWrong(inputs, failure); }
  };
  return h("div", { class: "panel" }, h("h1", {}, "导出审计记录（签名，可离线校验）"),
    h("form", { class: "actions", onsubmit: send }, h("span", {}, "自"), inputs.from, h("span", {}, "至"), inputs.until, h("button", { type: "submit", id: "export-ledger" }, "导出")),
    error, result);
}

/** One entry's inclusion proof against the newest signed checkpoint, shown and saved. */
function proofPanel(publicKey) {
  const inputs = { seq: h("input", { type: "number", min: 1, name: "proof-seq", placeholder: "记录序号" }) };
  const error = errorLine();
  const result = h("div", { id: "proof" });
  const fetchProof = async (seq) => {
    show(error);
    markWrong(inputs);
    inputs.seq.value = seq;
    result.replaceChildren();
    try {
      const { entry, proof, checkpoint } = await api("GET", `/api/v1/audit/entries/${encodeURIComponent(seq)}/proof`);
      const body = JSON.parse(entry.body);
      const name = `audit-proof-${proof.seq}.json`;
      result.replaceChildren(
        h("dl", { class: "facts", "data-seq": proof.seq },
          h("dt", {}, "记录"), h("dd", {}, `第 ${proof.seq} 条，${minute(body.recorded_at)} ${body.action}：${body.requester_department || body.requester_system || ""} → ${body.provider}`),
          h("dt", {}, "记录哈希"), h("dd", {}, h("code", {}, proof.entry_hash)),
          h("dt", {}, "签名检查点"), h("dd", { "data-size": checkpoint.size }, `覆盖第 ${checkpoint.first_seq} 至 ${checkpoint.size} 条，签于 ${minute(checkpoint.created_at)}`),
          h("dt", {}, "Merkle 根"), h("dd", {}, h("code", {}, checkpoint.merkle_root)),
          h("dt", {}, "证明路径"), h("dd", {}, `${proof.path.length} 层`)),
        saveLink("proof-file", name, { entry, proof, checkpoint }), offlineCheck(name, publicKey));
    } catch (failure) { show(error, failure); markWrong(inputs, failure); }
  };
  const panel = h("div", { class: "panel" }, h("h1", {}, "单条记录的存证证明"),
    h("form", { class: "actions", onsubmit: (event) => { event.preventDefault(); fetchProof(inputs.seq.value.trim()); } }, inputs.seq, h("button", { type: "submit", id: "fetch-proof" }, "取证明")),
    error, result);
  return { panel, fetchProof };
}

async function auditView(root) {
  const [volume, alerts, { public_key: publicKey }] = await Promise.all([api("GET", "/api/v1/audit/volume"), api("GET", "/api/v1/audit/alerts"), api("GET", "/api/v1/audit/public-key")]);
  const proofs = proofPanel(publicKey);
  const verdict = h("div", { id: "verdict" });
  const verify = async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    verdict.replaceChildren(h("span", { class: "muted" }, "正在逐条校验哈希链与签名检查点……"));
    try {
      const { holds, verification: v } = await api("GET", "/api/v1/audit/verify");
      verdict.replaceChildren(holds
        ? h("p", { class: "ok", "data-holds": "true" }, `校验通过：${v.entries} 条记录、${v.checkpoints} 个签名检查点、${v.archives} 个归档文件均未被篡改。`)
        : h("div", { class: "error", "data-holds": "false" }, h("p", {}, `校验未通过：首个异常记录为第 ${v.first_bad_entry} 条。`), h("ul", {}, v.problems.map((p) => h("li", {}, p)))));
    } catch (failure) { verdict.replaceChildren(h("p", { class: "error" }, failure.message)); }
    button.disabled = false;
  };
  const subject = h("input", { name: "subject-id", placeholder: "当事人证件号码" });
  const seen = h("div", { id: "subject-entries" });
  const error = errorLine();
  const search = async (event) => {
    event.preventDefault();
    show(error);
    try {
      const entries = await api("GET", `/api/v1/audit/entries?subject_id=${encodeURIComponent(subject.value.trim())}&limit=200`);
      seen.replaceChildren(table(["时间", "查询/交换", "请求部门", "经办人", "提供方", "数据项", "事由", "办件", "存证"], entries.map((e) => [
        minute(e.occurred_at), e.action, e.requester_department, e.requester_officer || e.requester_system, e.provider, e.data_items.join("、"), e.purpose, e.case_number || "无办件",
        h("button", { type: "button", class: "small plain", "data-proof": e.seq, onclick: () => proofs.fetchProof(e.seq) }, `第 ${e.seq} 条证明`),
      ])));
    } catch (failure) { show(error, failure); }
  };
  const alertDays = alerts.map((a) => ({ day: minute(a.occurred_at).slice(0, 10), series: RULES[a.rule] || a.rule, value: 1 }));
  root.append(
    h("div", { class: "panel" }, h("h1", {}, "账本完整性"), h("div", { class: "actions" }, h("button", { type: "button", id: "verify-ledger", onclick: verify }, "校验审计账本"), verdict)),
    h("div", { class: "panel" }, h("h1", {}, "各方每日数据交换量（近 30 日）"), volume.length ? stackedBars("volume-chart", volume.map((row) => ({ day: row.day, series: `${row.requester_name || row.requester_department || "（系统）"} → ${row.provider_name || row.provider}`, value: row.exchanges }))) : h("p", { class: "muted" }, "近 30 日无数据交换。")),
    h("div", { class: "panel" }, h("h1", {}, `异常预警（${alerts.length} 条）`), alerts.length ? stackedBars("alert-chart", alertDays) : h("p", { class: "muted", id: "no-alerts" }, "近 30 日无异常。"),
      h("div", { id: "alerts" }, table(["时间", "规则", "对象", "提供方", "次数", "说明"], alerts.map((a) => [minute(a.occurred_at), RULES[a.rule] || a.rule, a.requester_name || a.requester, a.provider_name || a.provider, a.count, a.message])))),
    h("div", { class: "panel" }, h("h1", {}, "谁查看了此人的数据、为什么"), h("form", { class: "actions", onsubmit: search }, subject, h("button", { type: "submit", id: "search-subject" }, "查询")), error, seen),
    proofs.panel, exportPanel(publicKey));
}

// --- integrators' connector status (连接器状态) --------------------------------------------

async function connectorsView(root) {
  const panel = h("div", { class: "panel" });
  const draw = async () => {
    const connectors = await api("GET", "/api/v1/connectors");
    const lags = await Promise.all(connectors.map((c) => api("GET", `/api/v1/connectors/${c.name}/offsets`).then((o) => o.lag, () => "—")));
    const error = errorLine();
    const act = async (path, body) => {
      show(error);
      try { await api("POST", path, body); await draw(); } catch (failure) { show(error, failure); }
    };
    const rows = connectors.map((c, i) => {
      const reason = h("input", { name: "pause-reason", placeholder: "暂停原因" });
      const open = c.incidents.filter((incident) => !incident.resolved_at);
      return [
        h("span", {}, CONNECTORS[c.name] || c.name, h("br"), h("span", { class: "muted" }, c.name)), h("span", { class: `badge level-${c.state === "running" ? "none" : c.state === "paused" ? "yellow" : "red"}`, "data-state": c.state }, { running: "运行中", paused: "已暂停", restarting: "故障重试中" }[c.state] || c.state),
        c.paused_reason || "—", c.batches_applied, lags[i], open.length ? open.map((incident) => `${minute(incident.opened_at)} ${incident.reason}`).join("；") : "无",
        h("div", { class: "actions" },
          c.state === "running"
            ? [reason, h("button", { type: "button", class: "small", "data-pause": c.name, onclick: () => act(`/api/v1/connectors/${c.name}/pause`, { reason: reason.value.trim() }) }, "暂停")]
            : h("button", { type: "button", class: "small", "data-resume": c.name, onclick: () => act(`/api/v1/connectors/${c.name}/resume`) }, "恢复"),
          h("button", { type: "button", class: "small plain", onclick: () => act(`/api/v1/connectors/${c.name}/restart`) }, "重启")),
      ];
    });
    panel.replaceChildren(h("h1", {}, "连接器状态"), error, table(["连接器", "状态", "暂停原因", "已处理批次", "消费积压", "未关闭故障", "操作"], rows, (i) => ({ "data-connector": connectors[i].name })));
  };
  await draw();
  root.append(panel);
}

// --- the frame: sign-in, tabs per role ----------------------------------------------------

const TRACK = ["track", "办件跟踪", trackingView];
const TABS = {
  village_clerk: [["accept", "受理登记", acceptanceView], TRACK],
  bank_outlet: [["accept", "受理登记", acceptanceView], TRACK],
  township_clerk: [["accept", "受理登记", acceptanceView], ["approve", "审批队列", approvalView], TRACK],
  county_approver: [["approve", "审批队列", approvalView], TRACK],
  supervisor: [["board", "电子监察", boardView], ["reports", "办件通报", reportsView], ["reviews", "好差评", reviewsView], ["warnings", "超时预警", warningsView], TRACK],
  postal: [["postal", "邮政看板", postalView]],
  data_bureau: [["audit", "数据共享审计", auditView]],
  integrator: [["connectors", "连接器状态", connectorsView], ["reconcile", "银行对账", reconciliationView], ["tokens", "令牌管理", tokensView], ["operations", "运维操作", operationsView]],
};

async function openTab(tab) {
  const view = document.getElementById("view");
  document.querySelectorAll("#tabs button").forEach((b) => b.classList.toggle("active", b.dataset.tab === tab[0]));
  view.replaceChildren(h("p", { class: "muted" }, "加载中……"));
  const root = h("div", { "data-view": tab[0] });
  try {
    await tab[2](root);
    view.replaceChildren(root);
  } catch (failure) {
    view.replaceChildren(h("p", { class: "error", role: "alert" }, failure.message));
  }
}

async function signIn(presented) {
  token = presented;
  me = await api("GET", "/api/v1/me");
  sessionStorage.setItem("hub-token", token);
  document.getElementById("sign-in").hidden = true;
  document.getElementById("county").textContent = me.county;
  document.getElementById("who").hidden = false;
  document.getElementById("who-name").textContent = me.holder;
  document.getElementById("who-role").textContent = me.role_title;
  document.getElementById("who-unit").textContent = [me.unit_name, me.window_name].filter(Boolean).join(" · ");
  const tabs = TABS[me.role] || [];
  const nav = document.getElementById("tabs");
  nav.replaceChildren(...tabs.map((tab) => h("button", { type: "button", "data-tab": tab[0], onclick: () => openTab(tab) }, tab[1])));
  nav.hidden = false;
  await openTab(tabs[0]);
}

function signOut() {
  sessionStorage.removeItem("hub-token");
  location.reload();
}

document.getElementById("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = document.getElementById("sign-in-error");
  error.textContent = "";
  try {
    await signIn(document.getElementById("token").value.trim());
  } catch (failure) {
    token = "";
    error.textContent = failure.status === 401 ? `令牌无效：${failure.message}` : failure.message;
  }
});
document.getElementById("sign-out").addEventListener("click", signOut);
if (token) signIn(token).catch(() => { sessionStorage.removeItem("hub-token"); token = ""; });
