use super::{CreateRole, DeleteRole, Permission, RenameRole, RoleInfo, SaveRoles};
use crate::auth::{get_me, Me, SudoForm};
use crate::shell_ui::{
    form_token, invalid, reset_on_success, ActionResult, FieldError, FormToken, Page,
};
use leptos::prelude::*;

#[component]
pub fn RolesPage() -> impl IntoView {
    let create = ServerAction::<CreateRole>::new();
    let rename = ServerAction::<RenameRole>::new();
    let delete = ServerAction::<DeleteRole>::new();
    let save = ServerAction::<SaveRoles>::new();
    let me = Resource::new(|| (), |_| get_me());
    let token = form_token(create);
    let roles = Resource::new(
        move || {
            (
                create.version().get(),
                rename.version().get(),
                delete.version().get(),
                save.version().get(),
            )
        },
        |_| super::list_roles(),
    );
    view! {
        <Page title="Roles" me data=move || roles.get() render=move |me, roles| view! {
                    <h1>"Roles"</h1>
                    <SudoForm/>
                    <Matrix me=me.clone() roles=roles.clone() save/>
                    <CustomRoles roles rename delete/>
                    <NewRole me create token/>
                }.into_any()/>
    }
}

/// Roles as columns, permissions as rows. Built-in roles are read-only; a box for a
/// permission the editor does not hold can be cleared but not ticked.
#[component]
fn Matrix(me: Me, roles: Vec<RoleInfo>, save: ServerAction<SaveRoles>) -> impl IntoView {
    // Shown but not editable: built-in roles, the editor's own role, and roles holding a
    // permission the editor lacks (the server refuses those edits too).
    let editable = |r: &RoleInfo| {
        !r.builtin && r.name != me.role && r.permissions.iter().all(|p| me.permissions.contains(p))
    };
    let custom: Vec<i64> = roles.iter().filter(|r| editable(r)).map(|r| r.id).collect();
    let has_custom = !custom.is_empty();
    let header = roles
        .iter()
        .map(|r| {
            let label = if r.builtin {
                format!("{} (built-in)", r.name)
            } else {
                r.name.clone()
            };
            view! { <th scope="col">{label}</th> }
        })
        .collect_view();
    let rows = Permission::all()
        .map(|p| {
            let cells = roles
                .iter()
                .map(|r| {
                    let held = r.permissions.contains(&p);
                    let label = format!("{}: {}", r.name, p.as_str());
                    let may_tick = me.permissions.contains(&p);
                    let locked = !editable(r);
                    view! {
                        <td>
                            <input
                                type="checkbox"
                                name="grant[]"
                                value=format!("{}:{}", r.id, p.as_str())
                                checked=held
                                disabled=locked || (!held && !may_tick)
                                aria-label=label
                            />
                        </td>
                    }
                })
                .collect_view();
            view! {
                <tr>
                    <th scope="row"><code>{p.as_str()}</code><br/><span class="muted">{p.describe()}</span></th>
                    {cells}
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="card" aria-labelledby="matrix-title">
            <h2 id="matrix-title">"Permission matrix"</h2>
            <ActionResult action=save ok=|n: &usize| format!("Saved. {n} role(s) changed.")/>
            <ActionForm action=save>
                {custom.into_iter().map(|id| view! { <input type="hidden" name="role[]" value=id.to_string()/> }).collect_view()}
                <div class="table-wrap" tabindex="0">
                    <table class="matrix">
                        <caption class="visually-hidden">"Permissions (rows) held by each role (columns)"</caption>
                        <thead><tr><th scope="col">"Permission"</th>{header}</tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                </div>
                {if has_custom {
                    view! { <button type="submit" class="btn btn-primary">"Save permissions"</button> }.into_any()
                } else {
                    view! { <p class="muted">"Built-in roles cannot be changed. Create a custom role below to choose its permissions."</p> }.into_any()
                }}
            </ActionForm>
        </section>
    }
}

#[component]
fn CustomRoles(
    roles: Vec<RoleInfo>,
    rename: ServerAction<RenameRole>,
    delete: ServerAction<DeleteRole>,
) -> impl IntoView {
    let custom: Vec<RoleInfo> = roles.into_iter().filter(|r| !r.builtin).collect();
    let empty = custom.is_empty();
    view! {
        <section class="card" aria-labelledby="custom-title">
            <h2 id="custom-title">"Custom roles"</h2>
            <ActionResult action=rename ok=|_: &()| "Role renamed.".to_owned()/>
            <ActionResult action=delete ok=|_: &()| "Role deleted.".to_owned()/>
            {if empty {
                view! { <p class="muted">"No custom roles yet."</p> }.into_any()
            } else {
                view! {
                    <ul class="plain-list">
                        {custom.into_iter().map(|r| {
                            let rename_id = format!("rename-{}", r.id);
                            let rename_label = format!("New name for {}", r.name);
                            let delete_label = format!("Delete {}", r.name);
                            let assigned = match r.users {
                                0 => "no users".to_owned(),
                                1 => "1 user".to_owned(),
                                n => format!("{n} users"),
                            };
                            view! {
                                <li class="role-row">
                                    <strong>{r.name.clone()}</strong>" · "{assigned}
                                    <ActionForm action=rename attr:class="inline-form">
                                        <input type="hidden" name="id" value=r.id.to_string()/>
                                        <label for=rename_id.clone() class="visually-hidden">{rename_label}</label>
                                        <input id=rename_id type="text" name="name" value=r.name.clone() required maxlength="50"/>
                                        <button type="submit" class="btn">"Rename"</button>
                                    </ActionForm>
                                    <ActionForm action=delete attr:class="inline-form">
                                        <input type="hidden" name="id" value=r.id.to_string()/>
                                        <button type="submit" class="btn btn-danger" aria-label=delete_label>"Delete"</button>
                                    </ActionForm>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn NewRole(
    me: Me,
    create: ServerAction<CreateRole>,
    token: Resource<Result<String, crate::error::AppError>>,
) -> impl IntoView {
    let boxes = Permission::all()
        .filter(|p| me.permissions.contains(p))
        .map(|p| {
            let id = format!("new-{}", p.as_str());
            view! {
                <div class="check">
                    <input id=id.clone() type="checkbox" name="permission[]" value=p.as_str()/>
                    <label for=id><code>{p.as_str()}</code>" — "{p.describe()}</label>
                </div>
            }
        })
        .collect_view();
    // The field the server names when it refuses a new role's name.
    const NAME: &[&str] = &["name"];
    view! {
        <section class="card" aria-labelledby="new-role-title">
            <h2 id="new-role-title">"Create a role"</h2>
            <ActionResult action=create ok=|_: &i64| "Role created.".to_owned()/>
            <ActionForm action=create node_ref=reset_on_success(create)>
                <FormToken token/>
                <div class="field">
                    <label for="new-role-name">"Name"</label>
                    <input id="new-role-name" type="text" name="name" required maxlength="50"
                        aria-invalid=invalid(create, NAME) aria-describedby=move || invalid(create, NAME)().map(|_| "new-role-name-error")/>
                    <FieldError action=create fields=NAME id="new-role-name-error"/>
                </div>
                <fieldset>
                    <legend>"Permissions"</legend>
                    {boxes}
                </fieldset>
                <button type="submit" class="btn btn-primary" disabled=move || create.pending().get()>"Create role"</button>
            </ActionForm>
        </section>
    }
}
